//! Who may launch an image: everyone, accounts, organizations and organizational units.

use std::collections::BTreeSet;

use super::{AccountId, Checker, FieldError, OrganizationArn, OuArn};

/// Sharing as a request states it, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharingRequest {
    /// Launchable by every AWS account.
    pub public: bool,
    /// Accounts that may launch the image.
    pub accounts: Vec<String>,
    /// Organizations whose accounts may launch the image.
    pub organizations: Vec<String>,
    /// Organizational units whose accounts may launch the image.
    pub organizational_units: Vec<String>,
    /// Also let the named accounts create volumes from the image's snapshots, so they can
    /// copy the image.
    pub create_volume_permission: bool,
}

/// A validated sharing state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sharing {
    /// Launchable by every AWS account.
    pub public: bool,
    /// Accounts that may launch the image.
    pub accounts: BTreeSet<AccountId>,
    /// Organizations whose accounts may launch the image.
    pub organizations: BTreeSet<OrganizationArn>,
    /// Organizational units whose accounts may launch the image.
    pub organizational_units: BTreeSet<OuArn>,
    /// Whether receivers may create volumes from the snapshots.
    pub create_volume_permission: bool,
}

impl Sharing {
    /// Validates every target of a sharing request, recording each bad one in `checker`
    /// under `field`.
    pub(crate) fn check(request: &SharingRequest, field: &str, checker: &mut Checker) -> Self {
        fn all<T: Ord>(
            checker: &mut Checker,
            field: &str,
            values: &[String],
            parse: fn(&str) -> Result<T, FieldError>,
        ) -> BTreeSet<T> {
            values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| checker.check(&format!("{field}[{i}]"), parse(v)))
                .collect()
        }
        Self {
            public: request.public,
            accounts: all(
                checker,
                &format!("{field}.accounts"),
                &request.accounts,
                AccountId::parse,
            ),
            organizations: all(
                checker,
                &format!("{field}.organizations"),
                &request.organizations,
                OrganizationArn::parse,
            ),
            organizational_units: all(
                checker,
                &format!("{field}.organizational_units"),
                &request.organizational_units,
                OuArn::parse,
            ),
            create_volume_permission: request.create_volume_permission,
        }
    }

    /// Validates a sharing request on its own.
    ///
    /// # Errors
    /// Every bad target, each at its place (`accounts[0]`, ...).
    pub fn parse(request: &SharingRequest) -> Result<Self, super::InvalidRequest> {
        let mut checker = Checker::default();
        let sharing = Self::check(request, "sharing", &mut checker);
        checker.finish().map(|()| sharing)
    }

    /// Whether anyone beyond the owning account gets access.
    pub fn shares_outside(&self) -> bool {
        self.public
            || !self.accounts.is_empty()
            || !self.organizations.is_empty()
            || !self.organizational_units.is_empty()
    }

    /// What moving from `self` (the current launch permissions) to `desired` adds and removes.
    /// Create-volume permission is not a launch permission and is carried by `desired` alone.
    pub fn changes_to(&self, desired: &Self) -> SharingChange {
        fn minus<T: Ord + Clone>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> BTreeSet<T> {
            a.difference(b).cloned().collect()
        }
        SharingChange {
            added: Self {
                public: desired.public && !self.public,
                accounts: minus(&desired.accounts, &self.accounts),
                organizations: minus(&desired.organizations, &self.organizations),
                organizational_units: minus(
                    &desired.organizational_units,
                    &self.organizational_units,
                ),
                create_volume_permission: desired.create_volume_permission,
            },
            removed: Self {
                public: self.public && !desired.public,
                accounts: minus(&self.accounts, &desired.accounts),
                organizations: minus(&self.organizations, &desired.organizations),
                organizational_units: minus(
                    &self.organizational_units,
                    &desired.organizational_units,
                ),
                create_volume_permission: false,
            },
        }
    }

    /// Whether no launch permission is granted.
    pub fn is_private(&self) -> bool {
        !self.shares_outside()
    }

    /// The sharing as a request would state it.
    pub fn to_request(&self) -> SharingRequest {
        SharingRequest {
            public: self.public,
            accounts: self.accounts.iter().map(ToString::to_string).collect(),
            organizations: self.organizations.iter().map(ToString::to_string).collect(),
            organizational_units: self
                .organizational_units
                .iter()
                .map(ToString::to_string)
                .collect(),
            create_volume_permission: self.create_volume_permission,
        }
    }
}

/// The launch permissions a change of sharing adds and removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharingChange {
    /// Granted by the change.
    pub added: Sharing,
    /// Revoked by the change.
    pub removed: Sharing,
}

impl SharingChange {
    /// Whether the change grants or revokes nothing.
    pub fn is_empty(&self) -> bool {
        self.added.is_private() && self.removed.is_private()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sharing(public: bool, accounts: &[&str]) -> Sharing {
        Sharing::parse(&SharingRequest {
            public,
            accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
            ..SharingRequest::default()
        })
        .unwrap()
    }

    #[test]
    fn changes_hold_only_the_difference() {
        let current = sharing(true, &["012345678901", "111111111111"]);
        let desired = sharing(false, &["111111111111", "222222222222"]);
        let change = current.changes_to(&desired);
        assert!(!change.added.public);
        assert!(change.removed.public);
        assert_eq!(change.added.to_request().accounts, ["222222222222"]);
        assert_eq!(change.removed.to_request().accounts, ["012345678901"]);
        assert!(desired.changes_to(&desired).is_empty());
    }

    #[test]
    fn every_bad_target_is_named_by_its_place() {
        let request = SharingRequest {
            public: false,
            accounts: vec!["012345678901".into(), "12".into()],
            organizations: vec!["o-nope".into()],
            organizational_units: vec![],
            create_volume_permission: false,
        };
        let err = Sharing::parse(&request).unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["sharing.accounts[1]", "sharing.organizations[0]"]);
    }

    #[test]
    fn leading_zero_accounts_survive_validation() {
        let request = SharingRequest {
            accounts: vec!["000000000042".into()],
            ..SharingRequest::default()
        };
        let sharing = Sharing::parse(&request).unwrap();
        assert!(sharing.shares_outside());
        assert_eq!(sharing.to_request().accounts, ["000000000042"]);
    }
}
