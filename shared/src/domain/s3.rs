//! Where manifests live: bucket names, key prefixes and manifest paths.

use super::{string_newtype, FieldError, ImageName};

/// An S3 bucket name, with S3's naming rules for general purpose buckets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BucketName(String);

impl BucketName {
    /// Validates a bucket name.
    ///
    /// # Errors
    /// A [`FieldError`] naming the broken rule: length 3 to 63; lowercase letters, digits, `.`
    /// and `-` only; a letter or digit at both ends; no `..`; not an IP address; no `xn--`
    /// prefix or `-s3alias` suffix.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let fail = |rule: &str| {
            Err(FieldError::new(
                "bucket",
                format!("bucket name {value:?} {rule}"),
            ))
        };
        if !(3..=63).contains(&value.len()) {
            return fail("must be 3 to 63 characters long");
        }
        if let Some(c) = value
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
        {
            return fail(&format!(
                "holds {c:?}; only lowercase letters, digits, '.' and '-' are allowed"
            ));
        }
        let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !edge_ok(value.chars().next()) || !edge_ok(value.chars().last()) {
            return fail("must begin and end with a letter or digit");
        }
        if value.contains("..") {
            return fail("must not contain '..'");
        }
        if value.parse::<std::net::Ipv4Addr>().is_ok() {
            return fail("must not look like an IP address");
        }
        if value.starts_with("xn--") || value.ends_with("-s3alias") {
            return fail("must not start with 'xn--' or end with '-s3alias'");
        }
        Ok(Self(value.to_owned()))
    }
}
string_newtype!(BucketName);

/// A key prefix inside the bucket, without leading or trailing `/`. It may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyPrefix(String);

impl KeyPrefix {
    /// Validates a prefix; one trailing `/` is dropped.
    ///
    /// # Errors
    /// A [`FieldError`] when the prefix starts with `/`, holds `//`, is longer than 512
    /// characters, or holds a character outside letters, digits and `! - _ . * ' ( ) /`.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let fail = |rule: &str| {
            Err(FieldError::new(
                "prefix",
                format!("prefix {value:?} {rule}"),
            ))
        };
        if value.starts_with('/') {
            return fail("must not start with '/'");
        }
        if value.contains("//") {
            return fail("must not contain '//'");
        }
        if value.len() > 512 {
            return fail("must be at most 512 characters long");
        }
        if let Some(c) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()/".contains(*c)))
        {
            return fail(&format!(
                "holds {c:?}; use letters, digits and ! - _ . * ' ( ) /"
            ));
        }
        Ok(Self(value.strip_suffix('/').unwrap_or(value).to_owned()))
    }

    /// The key of an image's manifest: `<prefix>/<image-name>/image.manifest.json`.
    pub fn manifest_key(&self, name: &ImageName) -> String {
        format!("{}{}/{}", self.dir(), name, MANIFEST_FILE)
    }

    /// The folder holding every file of an image, with a trailing `/`.
    pub fn image_dir(&self, name: &ImageName) -> String {
        format!("{}{}/", self.dir(), name)
    }

    fn dir(&self) -> String {
        if self.0.is_empty() {
            String::new()
        } else {
            format!("{}/", self.0)
        }
    }
}
string_newtype!(KeyPrefix);

/// The file name of every manifest amiforge writes.
pub const MANIFEST_FILE: &str = "image.manifest.json";

/// An object in S3 written as `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ManifestPath {
    bucket: BucketName,
    key: String,
}

impl ManifestPath {
    /// A path from its parts.
    pub fn new(bucket: BucketName, key: String) -> Self {
        Self { bucket, key }
    }

    /// Parses `s3://bucket/key`.
    ///
    /// # Errors
    /// A [`FieldError`] at `manifest_path` when the scheme, bucket or key is missing or bad.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let fail = || {
            FieldError::new(
                "manifest_path",
                format!("a manifest path must look like s3://bucket/key, got {value:?}"),
            )
        };
        let rest = value.strip_prefix("s3://").ok_or_else(fail)?;
        let (bucket, key) = rest.split_once('/').ok_or_else(fail)?;
        if key.is_empty() || key.starts_with('/') {
            return Err(fail());
        }
        let bucket = BucketName::parse(bucket).map_err(|e| e.at("manifest_path"))?;
        Ok(Self::new(bucket, key.to_owned()))
    }

    /// The bucket.
    pub fn bucket(&self) -> &BucketName {
        &self.bucket
    }

    /// The object key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The folder that holds the manifest and any other file of the image, with a trailing
    /// `/`.
    pub fn dir(&self) -> String {
        match self.key.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => String::new(),
        }
    }
}

impl std::fmt::Display for ManifestPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl TryFrom<String> for ManifestPath {
    type Error = FieldError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ManifestPath> for String {
    fn from(value: ManifestPath) -> String {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(BucketName::parse("amiforge-manifests.prod").is_ok());
        let err = BucketName::parse("Amiforge").unwrap_err();
        assert_eq!(err.field, "bucket");
        assert!(err.message.contains("'A'"), "{}", err.message);
        assert!(BucketName::parse("ab")
            .unwrap_err()
            .message
            .contains("3 to 63"));
        assert!(BucketName::parse("-abc")
            .unwrap_err()
            .message
            .contains("begin and end"));
        assert!(BucketName::parse("a..b")
            .unwrap_err()
            .message
            .contains(".."));
        assert!(BucketName::parse("192.168.1.1")
            .unwrap_err()
            .message
            .contains("IP"));
        assert!(BucketName::parse("my_bucket").is_err());
    }

    #[test]
    fn prefixes_reject_leading_slash_and_double_slash() {
        assert_eq!(
            KeyPrefix::parse("images/prod/").unwrap().as_str(),
            "images/prod"
        );
        assert_eq!(KeyPrefix::parse("").unwrap().as_str(), "");
        let err = KeyPrefix::parse("/images").unwrap_err();
        assert_eq!(err.field, "prefix");
        assert!(err.message.contains("start with '/'"));
        assert!(KeyPrefix::parse("images//prod")
            .unwrap_err()
            .message
            .contains("'//'"));
        assert!(KeyPrefix::parse("images prod").is_err());
    }

    #[test]
    fn manifest_keys_sit_under_the_image_name() {
        let name = ImageName::parse("web-1").unwrap();
        let prefix = KeyPrefix::parse("images").unwrap();
        assert_eq!(
            prefix.manifest_key(&name),
            "images/web-1/image.manifest.json"
        );
        assert_eq!(prefix.image_dir(&name), "images/web-1/");
        let empty = KeyPrefix::parse("").unwrap();
        assert_eq!(empty.manifest_key(&name), "web-1/image.manifest.json");
    }

    #[test]
    fn manifest_paths_round_trip() {
        let path = ManifestPath::parse("s3://bucket-a/images/web-1/image.manifest.json").unwrap();
        assert_eq!(path.bucket().as_str(), "bucket-a");
        assert_eq!(path.key(), "images/web-1/image.manifest.json");
        assert_eq!(path.dir(), "images/web-1/");
        assert_eq!(
            path.to_string(),
            "s3://bucket-a/images/web-1/image.manifest.json"
        );
        assert_eq!(
            ManifestPath::parse("http://x/y").unwrap_err().field,
            "manifest_path"
        );
        assert!(ManifestPath::parse("s3://bucket-a/").is_err());
        assert!(ManifestPath::parse("s3://bucket-a").is_err());
    }
}
