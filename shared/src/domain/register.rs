//! A request to register an image from a manifest that already exists: amiforge's own
//! `image.manifest.json`, or a legacy S3 bundle's `*.manifest.xml` (registered by its image
//! location).

use std::collections::BTreeMap;

use super::request::MAX_DESCRIPTION;
use super::{Checker, ImageName, InvalidRequest, ManifestPath, Sharing, SharingRequest, Tags};

/// The file name ending of a legacy S3 bundle's manifest.
pub const LEGACY_MANIFEST_SUFFIX: &str = ".manifest.xml";

/// The file name ending of amiforge's manifests.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// `POST /images/register`, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterRequest {
    /// `s3://bucket/key` of the manifest.
    pub manifest_path: String,
    /// The image name: required for a legacy bundle; an amiforge manifest names its image.
    pub name: Option<String>,
    /// The image description, for a legacy bundle.
    pub description: Option<String>,
    /// Who may launch the image.
    pub sharing: SharingRequest,
    /// Tags for the image, besides amiforge's own.
    pub tags: BTreeMap<String, String>,
}

/// What a register job registers from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterSource {
    /// An amiforge manifest: its block device mapping and attributes.
    Manifest(ManifestPath),
    /// A legacy S3 bundle, registered by image location.
    Bundle {
        /// The bundle's `*.manifest.xml`.
        location: ManifestPath,
        /// The image name.
        name: ImageName,
        /// The image description.
        description: Option<String>,
    },
}

impl RegisterSource {
    /// The manifest the image is registered from.
    pub fn path(&self) -> &ManifestPath {
        match self {
            Self::Manifest(path) | Self::Bundle { location: path, .. } => path,
        }
    }
}

/// A validated register request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterSpec {
    /// What to register.
    pub source: RegisterSource,
    /// Who may launch the image.
    pub sharing: Sharing,
    /// The caller's tags.
    pub tags: Tags,
}

impl RegisterRequest {
    /// Checks every field, naming each bad one.
    ///
    /// # Errors
    /// [`InvalidRequest`] with one entry per bad field.
    pub fn validate(&self) -> Result<RegisterSpec, InvalidRequest> {
        let mut checker = Checker::default();
        let path = if self.manifest_path.is_empty() {
            checker.reject(
                "manifest_path",
                "manifest_path is required: s3://bucket/key of an image.manifest.json or a \
                 legacy *.manifest.xml",
            );
            None
        } else {
            checker.check("manifest_path", ManifestPath::parse(&self.manifest_path))
        };
        let legacy = path
            .as_ref()
            .is_some_and(|p| p.key().ends_with(LEGACY_MANIFEST_SUFFIX));
        if let Some(p) = &path {
            if !legacy && !p.key().ends_with(MANIFEST_SUFFIX) {
                checker.reject(
                    "manifest_path",
                    format!(
                        "the manifest must be an amiforge *{MANIFEST_SUFFIX} or a legacy bundle's \
                         *{LEGACY_MANIFEST_SUFFIX}, got {:?}",
                        p.key()
                    ),
                );
            }
        }
        let name = match (&self.name, legacy) {
            (Some(name), true) => checker.check("name", ImageName::parse(name)),
            (None, true) => {
                checker.reject("name", "name is required to register a legacy bundle");
                None
            }
            (Some(_), false) => {
                checker.reject(
                    "name",
                    "an amiforge manifest names its image; leave name out",
                );
                None
            }
            (None, false) => None,
        };
        if let Some(description) = &self.description {
            let length = description.chars().count();
            if !legacy {
                checker.reject(
                    "description",
                    "an amiforge manifest holds its description; leave description out",
                );
            } else if length > MAX_DESCRIPTION {
                checker.reject(
                    "description",
                    format!(
                        "a description must be at most {MAX_DESCRIPTION} characters long, got \
                         {length}"
                    ),
                );
            }
        }
        let sharing = Sharing::check(&self.sharing, "sharing", &mut checker);
        let tags = checker.check("tags", Tags::parse(self.tags.clone()));
        checker.finish()?;

        let (Some(path), Some(tags)) = (path, tags) else {
            return Err(InvalidRequest(Vec::new()));
        };
        let source = match name {
            Some(name) if legacy => RegisterSource::Bundle {
                location: path,
                name,
                description: self.description.clone(),
            },
            _ => RegisterSource::Manifest(path),
        };
        Ok(RegisterSpec {
            source,
            sharing,
            tags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(request: &RegisterRequest) -> Vec<String> {
        request
            .validate()
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn an_amiforge_manifest_needs_only_its_path() {
        let spec = RegisterRequest {
            manifest_path: "s3://bucket/images/web/image.manifest.json".into(),
            ..RegisterRequest::default()
        }
        .validate()
        .unwrap();
        assert_eq!(
            spec.source,
            RegisterSource::Manifest(
                ManifestPath::parse("s3://bucket/images/web/image.manifest.json").unwrap()
            )
        );
    }

    #[test]
    fn a_legacy_bundle_needs_a_name() {
        let mut request = RegisterRequest {
            manifest_path: "s3://old-bundles/web/image.manifest.xml".into(),
            ..RegisterRequest::default()
        };
        assert_eq!(fields(&request), ["name"]);
        request.name = Some("web legacy".into());
        request.description = Some("from 2015".into());
        match request.validate().unwrap().source {
            RegisterSource::Bundle {
                location,
                name,
                description,
            } => {
                assert_eq!(location.key(), "web/image.manifest.xml");
                assert_eq!(name.as_str(), "web legacy");
                assert_eq!(description.as_deref(), Some("from 2015"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let request = RegisterRequest {
            manifest_path: "s3://bucket/images/web/notes.txt".into(),
            name: Some("web".into()),
            description: Some("d".into()),
            sharing: SharingRequest {
                accounts: vec!["1234".into()],
                ..SharingRequest::default()
            },
            tags: [("aws:x".to_owned(), "v".to_owned())].into(),
        };
        assert_eq!(
            fields(&request),
            [
                "manifest_path",
                "name",
                "description",
                "sharing.accounts[0]",
                "tags"
            ]
        );
        assert_eq!(fields(&RegisterRequest::default()), ["manifest_path"]);
    }
}
