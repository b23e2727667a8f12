//! Schedules: rebuilding an image from the same instance on a cron or rate expression, with
//! an image name rendered from the time of each run and a retention rule for old images.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{
    string_newtype, BucketName, BuildRequest, Checker, FieldError, ImageName, InvalidRequest,
    KeyPrefix, SharingRequest,
};

/// Longest schedule name: the rule name (`<prefix><name>`) must stay within EventBridge's 64.
pub const MAX_SCHEDULE_NAME: usize = 48;

/// Most images a retention rule may keep by count.
pub const MAX_KEEP_LAST: u32 = 1000;

/// Oldest age, in days, a retention rule may name.
pub const MAX_AGE_DAYS: u32 = 3650;

/// A schedule's name: 1 to 48 letters, digits, `-`, `_` or `.`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ScheduleName(String);

impl ScheduleName {
    /// Validates a schedule name.
    ///
    /// # Errors
    /// A [`FieldError`] unless the value is 1 to 48 letters, digits, `-`, `_` or `.`.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let allowed = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if (1..=MAX_SCHEDULE_NAME).contains(&value.len()) && allowed {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                "schedule",
                format!(
                    "a schedule name must be 1 to {MAX_SCHEDULE_NAME} letters, digits, '-', '_' \
                     or '.', got {value:?}"
                ),
            ))
        }
    }
}
string_newtype!(ScheduleName);

/// An EventBridge schedule expression: `rate(5 minutes)` or `cron(0 3 * * ? *)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScheduleExpression(String);

impl ScheduleExpression {
    /// Validates an expression with EventBridge's rules.
    ///
    /// # Errors
    /// A [`FieldError`] saying which part is wrong and what is allowed.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        let problem = if let Some(body) = inside(value, "rate(") {
            check_rate(body).err()
        } else if let Some(body) = inside(value, "cron(") {
            check_cron(body).err()
        } else {
            Some(format!(
                "a schedule expression is rate(<n> <minutes|hours|days>) or cron(<minutes> \
                 <hours> <day-of-month> <month> <day-of-week> <year>), got {value:?}"
            ))
        };
        match problem {
            None => Ok(Self(value.to_owned())),
            Some(problem) => Err(FieldError::new("expression", problem)),
        }
    }
}
string_newtype!(ScheduleExpression);

fn inside<'a>(value: &'a str, opening: &str) -> Option<&'a str> {
    value.strip_prefix(opening)?.strip_suffix(')')
}

fn check_rate(body: &str) -> Result<(), String> {
    let parts: Vec<&str> = body.split_whitespace().collect();
    let [count, unit] = parts.as_slice() else {
        return Err(format!(
            "rate(...) takes a whole number and a unit, as in rate(6 hours), got rate({body})"
        ));
    };
    let count: u32 =
        count.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
            format!("the rate must be a whole number of at least 1, got {count:?}")
        })?;
    let singular = ["minute", "hour", "day"];
    let plural = ["minutes", "hours", "days"];
    match (count, singular.contains(unit), plural.contains(unit)) {
        (1, true, _) | (2.., _, true) => Ok(()),
        (1, _, true) => Err(format!(
            "a rate of 1 takes a singular unit (minute, hour or day), got {unit:?}"
        )),
        (_, true, _) => Err(format!(
            "a rate above 1 takes a plural unit (minutes, hours or days), got {unit:?}"
        )),
        _ => Err(format!(
            "the rate's unit must be minutes, hours or days, got {unit:?}"
        )),
    }
}

/// One field of a cron expression: its name, numeric range and names for values.
struct CronField {
    name: &'static str,
    low: u32,
    high: u32,
    names: &'static [&'static str],
}

const CRON_FIELDS: [CronField; 6] = [
    CronField {
        name: "minutes",
        low: 0,
        high: 59,
        names: &[],
    },
    CronField {
        name: "hours",
        low: 0,
        high: 23,
        names: &[],
    },
    CronField {
        name: "day-of-month",
        low: 1,
        high: 31,
        names: &[],
    },
    CronField {
        name: "month",
        low: 1,
        high: 12,
        names: &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
    },
    CronField {
        name: "day-of-week",
        low: 1,
        high: 7,
        names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    },
    CronField {
        name: "year",
        low: 1970,
        high: 2199,
        names: &[],
    },
];

fn check_cron(body: &str) -> Result<(), String> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    if fields.len() != CRON_FIELDS.len() {
        return Err(format!(
            "cron(...) takes 6 fields (minutes hours day-of-month month day-of-week year), got \
             {}: cron({body})",
            fields.len()
        ));
    }
    for (index, (value, field)) in fields.iter().zip(&CRON_FIELDS).enumerate() {
        check_cron_field(index, value, field).map_err(|problem| {
            format!(
                "cron field {} ({}) {problem}, got {value:?}",
                index + 1,
                field.name
            )
        })?;
    }
    let (day_of_month, day_of_week) = (fields[2], fields[4]);
    if (day_of_month == "?") == (day_of_week == "?") {
        return Err(format!(
            "exactly one of day-of-month and day-of-week must be '?', got {day_of_month:?} and \
             {day_of_week:?}"
        ));
    }
    Ok(())
}

fn check_cron_field(index: usize, value: &str, field: &CronField) -> Result<(), String> {
    let allowed = match index {
        2 => "must be *, ?, L, LW, <day>W, or days 1-31 with , - /",
        4 => "must be *, ?, L, <day>L, <day>#<1-5>, or days 1-7 / SUN-SAT with , - /",
        3 => "must be *, or months 1-12 / JAN-DEC with , - /",
        5 => "must be *, or years 1970-2199 with , - /",
        _ => "must be *, or numbers in range with , - /",
    };
    let fail = || allowed.to_owned();
    if value == "?" {
        return if index == 2 || index == 4 {
            Ok(())
        } else {
            Err(fail())
        };
    }
    if index == 2 && (value == "L" || value == "LW") {
        return Ok(());
    }
    if index == 2 {
        if let Some(day) = value.strip_suffix('W') {
            return number_in(day, field).map(|_| ()).ok_or_else(fail);
        }
    }
    if index == 4 {
        if value == "L" {
            return Ok(());
        }
        if let Some(day) = value.strip_suffix('L') {
            return number_in(day, field).map(|_| ()).ok_or_else(fail);
        }
        if let Some((day, nth)) = value.split_once('#') {
            let nth_ok = nth.parse::<u32>().is_ok_and(|n| (1..=5).contains(&n));
            return (number_in(day, field).is_some() && nth_ok)
                .then_some(())
                .ok_or_else(fail);
        }
    }
    for item in value.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            if !step.parse::<u32>().is_ok_and(|n| n >= 1) {
                return Err(fail());
            }
        }
        let ok = base == "*"
            || match base.split_once('-') {
                Some((from, to)) => {
                    number_in(from, field).is_some() && number_in(to, field).is_some()
                }
                None => number_in(base, field).is_some(),
            };
        if !ok {
            return Err(fail());
        }
    }
    Ok(())
}

fn number_in(value: &str, field: &CronField) -> Option<u32> {
    let number = value.parse::<u32>().ok().or_else(|| {
        field
            .names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(value))
            .and_then(|i| u32::try_from(i).ok())
            .map(|i| i + field.low)
    })?;
    (field.low..=field.high).contains(&number).then_some(number)
}

/// An image name with placeholders filled in at each run, in UTC: `{date}` (`2026-12-03`),
/// `{time}` (`0300`), `{timestamp}` (`20261203T030000Z`) and `{schedule}`.
///
/// The finest time placeholder decides the slot: two runs whose names render the same are the
/// same slot, and only the first of them builds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NameTemplate(String);

/// The placeholders a name template may hold.
pub const PLACEHOLDERS: [&str; 4] = ["date", "time", "timestamp", "schedule"];

impl NameTemplate {
    /// Validates a template: known placeholders only, at least one that changes with time, and
    /// a valid image name whatever the time.
    ///
    /// # Errors
    /// A [`FieldError`] naming the unknown placeholder, the stray brace, or the rendered name's
    /// problem.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let template = Self(value.to_owned());
        let mut timed = false;
        for piece in template.pieces()? {
            if let Piece::Placeholder(name) = piece {
                if !PLACEHOLDERS.contains(&name) {
                    return Err(FieldError::new(
                        "name_template",
                        format!(
                            "unknown placeholder {{{name}}}; a name template may hold {}",
                            PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                        ),
                    ));
                }
                timed |= name != "schedule";
            }
        }
        if !timed {
            return Err(FieldError::new(
                "name_template",
                "a name template must hold {date}, {time} or {timestamp}, so that each run \
                 gets a name of its own",
            ));
        }
        // The longest schedule name and a two-digit everything: the widest rendering.
        let widest = Utc.with_ymd_and_hms(2199, 12, 31, 23, 59, 59).single();
        let long_name = "s".repeat(MAX_SCHEDULE_NAME);
        if let Some(at) = widest {
            let rendered = template.render_raw(&long_name, at)?;
            ImageName::parse(&rendered).map_err(|e| {
                FieldError::new(
                    "name_template",
                    format!(
                        "the template renders names like {rendered:?}: {}",
                        e.message
                    ),
                )
            })?;
        }
        Ok(template)
    }

    /// The image name of the run at `at`.
    ///
    /// # Errors
    /// A [`FieldError`] when the rendered name is not a valid image name.
    pub fn render(
        &self,
        schedule: &ScheduleName,
        at: DateTime<Utc>,
    ) -> Result<ImageName, FieldError> {
        let rendered = self.render_raw(schedule.as_str(), at)?;
        ImageName::parse(&rendered).map_err(|e| e.at("name_template"))
    }

    fn render_raw(&self, schedule: &str, at: DateTime<Utc>) -> Result<String, FieldError> {
        let mut out = String::new();
        for piece in self.pieces()? {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Placeholder("date") => out.push_str(&at.format("%Y-%m-%d").to_string()),
                Piece::Placeholder("time") => out.push_str(&at.format("%H%M").to_string()),
                Piece::Placeholder("timestamp") => {
                    out.push_str(&at.format("%Y%m%dT%H%M%SZ").to_string());
                }
                Piece::Placeholder(_) => out.push_str(schedule),
            }
        }
        Ok(out)
    }

    fn pieces(&self) -> Result<Vec<Piece<'_>>, FieldError> {
        let mut pieces = Vec::new();
        let mut rest = self.0.as_str();
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    pieces.push(Piece::Text(rest));
                    rest = "";
                }
                Some(at) if rest[at..].starts_with('}') => {
                    return Err(stray_brace(self.0.len() - rest.len() + at));
                }
                Some(at) => {
                    pieces.push(Piece::Text(&rest[..at]));
                    let after = &rest[at + 1..];
                    let close = after
                        .find('}')
                        .filter(|c| !after[..*c].contains('{'))
                        .ok_or_else(|| stray_brace(self.0.len() - rest.len() + at))?;
                    pieces.push(Piece::Placeholder(&after[..close]));
                    rest = &after[close + 1..];
                }
            }
        }
        Ok(pieces)
    }
}
string_newtype!(NameTemplate);

enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

fn stray_brace(position: usize) -> FieldError {
    FieldError::new(
        "name_template",
        format!(
            "unmatched brace at position {}; placeholders are written {{date}}, {{time}}, \
             {{timestamp}} or {{schedule}}",
            position + 1
        ),
    )
}

/// Which images of a schedule to keep. An image goes only when every rule given lets it go,
/// and the newest image always stays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Keep the newest this many images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Keep images younger than this many days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
}

/// An image as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retained {
    /// The image id.
    pub image_id: String,
    /// The image name, which orders images created in the same second.
    pub name: String,
    /// When it was created.
    pub created: DateTime<Utc>,
}

impl Retention {
    /// Whether any rule is set.
    pub fn is_set(&self) -> bool {
        self.keep_last.is_some() || self.max_age_days.is_some()
    }

    fn check(&self, checker: &mut Checker) {
        if let Some(n) = self.keep_last {
            if !(1..=MAX_KEEP_LAST).contains(&n) {
                checker.reject(
                    "retention.keep_last",
                    format!(
                        "keep_last must be from 1 to {MAX_KEEP_LAST} (the newest image is always \
                         kept), got {n}"
                    ),
                );
            }
        }
        if let Some(days) = self.max_age_days {
            if !(1..=MAX_AGE_DAYS).contains(&days) {
                checker.reject(
                    "retention.max_age_days",
                    format!("max_age_days must be from 1 to {MAX_AGE_DAYS}, got {days}"),
                );
            }
        }
    }

    /// The images to purge, oldest first: beyond the newest `keep_last` (when set) and older
    /// than `max_age_days` (when set). With no rule, none; the newest image is never one.
    pub fn surplus(&self, images: &[Retained], now: DateTime<Utc>) -> Vec<String> {
        if !self.is_set() {
            return Vec::new();
        }
        let mut newest_first: Vec<&Retained> = images.iter().collect();
        newest_first.sort_by(|a, b| (b.created, &b.name).cmp(&(a.created, &a.name)));
        let keep = self.keep_last.map_or(1, |n| n.max(1)) as usize;
        let cutoff = self
            .max_age_days
            .map(|days| now - Duration::days(i64::from(days)));
        let mut surplus: Vec<String> = newest_first
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(rank, image)| {
                let beyond_count = self.keep_last.is_none() || *rank >= keep;
                let too_old = cutoff.is_none_or(|c| image.created < c);
                beyond_count && too_old
            })
            .map(|(_, image)| image.image_id.clone())
            .collect();
        surplus.reverse();
        surplus
    }
}

/// `PUT /schedules/{name}`, as sent: when to build, what to build from, how to name it and
/// how many images to keep.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleRequest {
    /// `rate(...)` or `cron(...)`, in UTC.
    pub expression: String,
    /// The image name of each run, with placeholders.
    pub name_template: String,
    /// The instance to image.
    pub instance_id: String,
    /// The images' description.
    pub description: Option<String>,
    /// Snapshot the instance as it runs; when false it is stopped for the snapshot.
    pub no_reboot: bool,
    /// Capture only these device names.
    pub include_devices: Vec<String>,
    /// Capture every EBS volume but these device names.
    pub exclude_devices: Vec<String>,
    /// Who may launch the images.
    pub sharing: SharingRequest,
    /// Tags for the images and their snapshots.
    pub tags: BTreeMap<String, String>,
    /// Which images to keep.
    pub retention: Retention,
    /// Whether the schedule fires.
    pub enabled: bool,
}

impl Default for ScheduleRequest {
    fn default() -> Self {
        Self {
            expression: String::new(),
            name_template: String::new(),
            instance_id: String::new(),
            description: None,
            no_reboot: true,
            include_devices: Vec::new(),
            exclude_devices: Vec::new(),
            sharing: SharingRequest::default(),
            tags: BTreeMap::new(),
            retention: Retention::default(),
            enabled: true,
        }
    }
}

/// A validated schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSpec {
    /// Its name.
    pub name: ScheduleName,
    /// When it fires.
    pub expression: ScheduleExpression,
    /// How its images are named.
    pub template: NameTemplate,
    /// The request as sent, checked.
    pub request: ScheduleRequest,
}

impl ScheduleRequest {
    /// The build request of the run at `at`, its name rendered from the template.
    ///
    /// # Errors
    /// A [`FieldError`] when the template or the rendered name is not valid.
    pub fn build_request(
        &self,
        schedule: &ScheduleName,
        at: DateTime<Utc>,
    ) -> Result<BuildRequest, FieldError> {
        let template = NameTemplate::parse(&self.name_template)?;
        let name = template.render(schedule, at)?;
        Ok(BuildRequest {
            name: name.to_string(),
            ..self.build_request_unnamed()
        })
    }

    /// Checks every field, as the builds it will start would, naming each bad one: a schedule
    /// that would fail at 3 a.m. is refused when it is saved.
    ///
    /// # Errors
    /// [`InvalidRequest`] with one entry per bad field.
    pub fn validate(
        &self,
        name: &str,
        bucket: &BucketName,
        prefix: &KeyPrefix,
    ) -> Result<ScheduleSpec, InvalidRequest> {
        let mut checker = Checker::default();
        let schedule = checker.check("name", ScheduleName::parse(name));
        let expression = if self.expression.is_empty() {
            checker.reject(
                "expression",
                "expression is required: rate(<n> <unit>) or cron(<6 fields>)",
            );
            None
        } else {
            checker.check("expression", ScheduleExpression::parse(&self.expression))
        };
        let template = if self.name_template.is_empty() {
            checker.reject(
                "name_template",
                "name_template is required, for example web-{date}-{time}",
            );
            None
        } else {
            checker.check("name_template", NameTemplate::parse(&self.name_template))
        };
        self.retention.check(&mut checker);

        // Every other field as a build would check it; the name is the template's, checked above.
        let build = BuildRequest {
            name: "scheduled-image".to_owned(),
            ..self.build_request_unnamed()
        };
        if let Err(InvalidRequest(errors)) = build.validate(bucket, prefix) {
            for error in errors {
                checker.reject(&error.field, error.message);
            }
        }
        checker.finish()?;

        match (schedule, expression, template) {
            (Some(name), Some(expression), Some(template)) => Ok(ScheduleSpec {
                name,
                expression,
                template,
                request: self.clone(),
            }),
            _ => Err(InvalidRequest(Vec::new())),
        }
    }

    /// The build request of a run, without its name.
    fn build_request_unnamed(&self) -> BuildRequest {
        BuildRequest {
            instance_id: self.instance_id.clone(),
            name: String::new(),
            description: self.description.clone(),
            no_reboot: self.no_reboot,
            include_devices: self.include_devices.clone(),
            exclude_devices: self.exclude_devices.clone(),
            sharing: self.sharing.clone(),
            tags: self.tags.clone(),
            product_codes: Vec::new(),
            bucket: None,
            prefix: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn rate_expressions_follow_eventbridge_units() {
        for good in [
            "rate(1 day)",
            "rate(5 minutes)",
            "rate(12 hours)",
            "rate(1 minute)",
        ] {
            assert!(ScheduleExpression::parse(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("rate(1 days)", "singular"),
            ("rate(5 minute)", "plural"),
            ("rate(0 hours)", "at least 1"),
            ("rate(2 weeks)", "minutes, hours or days"),
            ("rate(daily)", "whole number and a unit"),
            ("every day", "rate(<n>"),
        ] {
            let err = ScheduleExpression::parse(bad).unwrap_err();
            assert_eq!(err.field, "expression");
            assert!(err.message.contains(says), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn cron_expressions_take_six_fields_and_one_question_mark() {
        for good in [
            "cron(0 3 * * ? *)",
            "cron(15 10 ? * MON-FRI *)",
            "cron(0/15 * * * ? 2026-2030)",
            "cron(0 8 L * ? *)",
            "cron(0 8 ? * 6#3 *)",
            "cron(0 0 1,15 JAN,JUL ? *)",
        ] {
            assert!(ScheduleExpression::parse(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("cron(0 3 * * *)", "takes 6 fields"),
            ("cron(60 3 * * ? *)", "cron field 1 (minutes)"),
            ("cron(0 24 * * ? *)", "cron field 2 (hours)"),
            (
                "cron(0 3 * * * *)",
                "exactly one of day-of-month and day-of-week",
            ),
            ("cron(0 3 ? * ? *)", "exactly one of"),
            ("cron(0 3 ? * FUNDAY *)", "cron field 5 (day-of-week)"),
            ("cron(0 3 * 13 ? *)", "cron field 4 (month)"),
        ] {
            let err = ScheduleExpression::parse(bad).unwrap_err();
            assert!(err.message.contains(says), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn templates_render_utc_date_and_time() {
        let schedule = ScheduleName::parse("nightly").unwrap();
        let template = NameTemplate::parse("web-{date}-{time} ({schedule})").unwrap();
        let name = template.render(&schedule, at(2026, 12, 3, 3, 0)).unwrap();
        assert_eq!(name.as_str(), "web-2026-12-03-0300 (nightly)");
        let stamp = NameTemplate::parse("db {timestamp}").unwrap();
        assert_eq!(
            stamp
                .render(&schedule, at(2027, 1, 9, 23, 5))
                .unwrap()
                .as_str(),
            "db 20270109T230500Z"
        );
    }

    #[test]
    fn templates_that_cannot_name_an_image_are_refused_when_saved() {
        for (bad, says) in [
            ("web-{day}", "unknown placeholder {day}"),
            ("web-{date", "unmatched brace at position 5"),
            ("web-}{date}", "unmatched brace at position 5"),
            ("web-{schedule}", "must hold {date}, {time} or {timestamp}"),
            ("web", "must hold"),
            ("web:{date}", "':'"),
            (&format!("{}-{{timestamp}}", "w".repeat(120)), "3 to 128"),
        ] {
            let err = NameTemplate::parse(bad).unwrap_err();
            assert_eq!(err.field, "name_template");
            assert!(err.message.contains(says), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn schedule_names_are_short_and_plain() {
        assert!(ScheduleName::parse("web-nightly_1.0").is_ok());
        assert!(ScheduleName::parse("").is_err());
        assert!(ScheduleName::parse("web nightly").is_err());
        assert!(ScheduleName::parse(&"a".repeat(49)).is_err());
    }

    fn images(days_old: &[i64], now: DateTime<Utc>) -> Vec<Retained> {
        days_old
            .iter()
            .enumerate()
            .map(|(i, d)| Retained {
                image_id: format!("ami-{i:08x}"),
                name: format!("web-{i}"),
                created: now - Duration::days(*d),
            })
            .collect()
    }

    #[test]
    fn retention_keeps_the_newest_and_purges_oldest_first() {
        let now = at(2026, 12, 3, 3, 0);
        let five = images(&[0, 1, 2, 3, 4], now);
        let keep_two = Retention {
            keep_last: Some(2),
            max_age_days: None,
        };
        assert_eq!(
            keep_two.surplus(&five, now),
            ["ami-00000004", "ami-00000003", "ami-00000002"]
        );
        let young = Retention {
            keep_last: None,
            max_age_days: Some(2),
        };
        assert_eq!(young.surplus(&five, now), ["ami-00000004", "ami-00000003"]);
        // Both rules: an image goes only when both let it go.
        let both = Retention {
            keep_last: Some(1),
            max_age_days: Some(3),
        };
        assert_eq!(both.surplus(&five, now), ["ami-00000004"]);
        // The newest stays even when it is old; no rule purges nothing.
        let old = images(&[40, 50], now);
        assert_eq!(young.surplus(&old, now), ["ami-00000001"]);
        assert!(Retention::default().surplus(&five, now).is_empty());
    }

    #[test]
    fn a_schedule_names_every_bad_field() {
        let request = ScheduleRequest {
            expression: "cron(0 3 * * *)".into(),
            name_template: "web-{day}".into(),
            instance_id: "i-nothex!".into(),
            sharing: SharingRequest {
                accounts: vec!["12345".into()],
                ..SharingRequest::default()
            },
            retention: Retention {
                keep_last: Some(0),
                max_age_days: None,
            },
            ..ScheduleRequest::default()
        };
        let bucket = BucketName::parse("amiforge-test").unwrap();
        let prefix = KeyPrefix::parse("images").unwrap();
        let fields: Vec<String> = request
            .validate("bad name", &bucket, &prefix)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "name",
                "expression",
                "name_template",
                "retention.keep_last",
                "instance_id",
                "sharing.accounts[0]"
            ]
        );
        let good = ScheduleRequest {
            expression: "rate(1 day)".into(),
            name_template: "web-{date}".into(),
            instance_id: "i-0123abcd".into(),
            ..ScheduleRequest::default()
        };
        let spec = good.validate("nightly", &bucket, &prefix).unwrap();
        assert_eq!(spec.name.as_str(), "nightly");
        let build = good
            .build_request(&spec.name, at(2026, 12, 3, 3, 0))
            .unwrap();
        assert_eq!(build.name, "web-2026-12-03");
    }
}
