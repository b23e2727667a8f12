//! Tags: the user's own, within AWS limits, and the ones amiforge puts on what it creates.

use std::collections::BTreeMap;

use super::FieldError;

/// Keys of the tags amiforge puts on every resource it creates.
pub struct TagKey;

impl TagKey {
    /// The job that created the resource; its presence marks the resource as amiforge's.
    pub const JOB_ID: &'static str = "amiforge:job-id";
    /// The image name the job builds.
    pub const IMAGE_NAME: &'static str = "amiforge:image-name";
    /// The instance the image was made from.
    pub const SOURCE_INSTANCE: &'static str = "amiforge:source-instance";
    /// The manifest path of the image.
    pub const MANIFEST: &'static str = "amiforge:manifest";
    /// The image made from the snapshots.
    pub const IMAGE_ID: &'static str = "amiforge:image-id";
    /// The schedule whose run built the image.
    pub const SCHEDULE: &'static str = "amiforge:schedule";
}

/// Most tags a user may ask for; EC2 allows 50 per resource and amiforge keeps a few.
pub const MAX_USER_TAGS: usize = 40;

/// Tags a user asked for, checked against AWS's limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct Tags(BTreeMap<String, String>);

impl Tags {
    /// Validates a set of tags.
    ///
    /// # Errors
    /// A [`FieldError`] at `tags.<key>` (or `tags`) for more than 40 tags, a key that is empty,
    /// longer than 128 characters or starts with the reserved `aws:` or `amiforge:`, or a
    /// value longer than 256 characters.
    pub fn parse(tags: BTreeMap<String, String>) -> Result<Self, FieldError> {
        if tags.len() > MAX_USER_TAGS {
            return Err(FieldError::new(
                "tags",
                format!(
                    "at most {MAX_USER_TAGS} tags are allowed, got {}",
                    tags.len()
                ),
            ));
        }
        for (key, value) in &tags {
            let field = format!("tags.{key}");
            let key_len = key.chars().count();
            if !(1..=128).contains(&key_len) {
                return Err(FieldError::new(
                    field,
                    format!("a tag key must be 1 to 128 characters long, got {key_len}"),
                ));
            }
            let lower = key.to_ascii_lowercase();
            if lower.starts_with("aws:") || lower.starts_with("amiforge:") {
                return Err(FieldError::new(
                    field,
                    "tag keys starting with 'aws:' or 'amiforge:' are reserved",
                ));
            }
            let value_len = value.chars().count();
            if value_len > 256 {
                return Err(FieldError::new(
                    field,
                    format!("a tag value must be at most 256 characters long, got {value_len}"),
                ));
            }
        }
        Ok(Self(tags))
    }

    /// The tags in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<BTreeMap<String, String>> for Tags {
    type Error = FieldError;

    fn try_from(tags: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        Self::parse(tags)
    }
}

impl From<Tags> for BTreeMap<String, String> {
    fn from(tags: Tags) -> Self {
        tags.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn tags_within_limits_are_kept() {
        let parsed = Tags::parse(tags(&[("team", "web"), ("empty", "")])).unwrap();
        assert_eq!(parsed.iter().count(), 2);
    }

    #[test]
    fn reserved_prefixes_are_rejected_whatever_the_case() {
        let err = Tags::parse(tags(&[("AWS:x", "1")])).unwrap_err();
        assert_eq!(err.field, "tags.AWS:x");
        assert!(err.message.contains("reserved"));
        assert!(Tags::parse(tags(&[("amiforge:job-id", "1")])).is_err());
    }

    #[test]
    fn key_and_value_lengths_are_bounded() {
        let long_key = "k".repeat(129);
        let err = Tags::parse(tags(&[(long_key.as_str(), "v")])).unwrap_err();
        assert!(err.message.contains("1 to 128"));
        assert!(Tags::parse(tags(&[("", "v")])).is_err());
        let long_value = "v".repeat(257);
        let err = Tags::parse(tags(&[("k", long_value.as_str())])).unwrap_err();
        assert_eq!(err.field, "tags.k");
        assert!(err.message.contains("256"));
    }

    #[test]
    fn too_many_tags_are_rejected() {
        let many: BTreeMap<String, String> =
            (0..41).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(Tags::parse(many).unwrap_err().field, "tags");
    }
}
