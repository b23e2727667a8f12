//! Image names, with EC2's rules for them.

use super::{string_newtype, FieldError};

/// The name of an Amazon Machine Image: 3 to 128 characters, letters, digits, spaces and
/// `( ) [ ] . / - ' @ _`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ImageName(String);

const PUNCTUATION: &str = "()[]./-'@_ ";

impl ImageName {
    /// Validates an image name.
    ///
    /// # Errors
    /// A [`FieldError`] giving the length rule, or the first character that is not allowed and
    /// its position (counted from 1).
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let length = value.chars().count();
        if !(3..=128).contains(&length) {
            return Err(FieldError::new(
                "name",
                format!("an image name must be 3 to 128 characters long, got {length}"),
            ));
        }
        let bad = value
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || PUNCTUATION.contains(*c)));
        if let Some((index, c)) = bad {
            return Err(FieldError::new(
                "name",
                format!(
                    "character {c:?} at position {} is not allowed in an image name; \
                     use letters, digits, spaces and ( ) [ ] . / - ' @ _",
                    index + 1
                ),
            ));
        }
        Ok(Self(value.to_owned()))
    }
}
string_newtype!(ImageName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_every_allowed_character() {
        let name = ImageName::parse("web (v2) [prod] 1.0/x-y 'a' @b_c").unwrap();
        assert_eq!(name.as_str(), "web (v2) [prod] 1.0/x-y 'a' @b_c");
    }

    #[test]
    fn names_report_the_first_bad_character_and_position() {
        let err = ImageName::parse("web#server!").unwrap_err();
        assert_eq!(err.field, "name");
        assert!(err.message.contains("'#' at position 4"), "{}", err.message);
        let err = ImageName::parse("café-image").unwrap_err();
        assert!(err.message.contains("'é' at position 4"), "{}", err.message);
    }

    #[test]
    fn names_must_be_3_to_128_characters() {
        assert!(ImageName::parse("abc").is_ok());
        assert!(ImageName::parse(&"a".repeat(128)).is_ok());
        let err = ImageName::parse("ab").unwrap_err();
        assert!(err.message.contains("3 to 128"), "{}", err.message);
        assert!(ImageName::parse(&"a".repeat(129)).is_err());
    }
}
