//! `amiforge list`, `show` and `share`: the images, one image, and who may launch it.

use anyhow::{Context, Result};
use http::Method;

use crate::api::{ImageDetail, ImagePage, PermissionsChange};
use crate::args::{Format, GlobalArgs, ListArgs, ShareArgs, ShowArgs};
use crate::client::Client;
use crate::{output, Outcome};

/// Lists one page of images.
///
/// # Errors
/// Connection, HTTP and API errors.
pub async fn list(args: ListArgs, global: &GlobalArgs) -> Result<Outcome> {
    let client = Client::connect(&global.settings()).await?;
    let query = [
        ("owner", args.owner),
        ("name", args.name),
        ("state", args.state),
        ("limit", args.limit.map(|n| n.to_string())),
        ("next", args.next),
    ];
    let answer = client.get(&["images"], &query).await?;

    if global.output == Format::Json {
        output::emit(&output::json(&answer))?;
        return Ok(Outcome::Done);
    }
    let page: ImagePage = serde_json::from_value(answer).context("reading the list of images")?;
    output::emit(&output::images(&page))?;
    if let Some(hint) = output::next_page(page.next.as_deref()) {
        eprintln!("{hint}");
    }
    Ok(Outcome::Done)
}

/// Shows one image.
///
/// # Errors
/// Connection, HTTP and API errors, such as an unknown image.
pub async fn show(args: ShowArgs, global: &GlobalArgs) -> Result<Outcome> {
    let client = Client::connect(&global.settings()).await?;
    let answer = client.get(&["images", &args.image], &[]).await?;

    let text = match global.output {
        Format::Json => output::json(&answer),
        Format::Table => {
            let image: ImageDetail = serde_json::from_value(answer).context("reading the image")?;
            output::image(&image)
        }
    };
    output::emit(&text)?;
    Ok(Outcome::Done)
}

/// Replaces who may launch the image with what the flags state.
///
/// # Errors
/// Connection, HTTP and API errors, such as a bad account id or an image that cannot be
/// made public.
pub async fn share(args: ShareArgs, global: &GlobalArgs) -> Result<Outcome> {
    // `--private` is `public: false`, which is also what leaving out `--public` means: the
    // body is the whole desired state either way.
    let body = serde_json::to_value(args.sharing.request())?;
    let client = Client::connect(&global.settings()).await?;
    let answer = client
        .send(
            Method::PUT,
            &["images", &args.image, "permissions"],
            &[],
            Some(&body),
            &[],
        )
        .await?;

    let text = match global.output {
        Format::Json => output::json(&answer),
        Format::Table => {
            let change: PermissionsChange =
                serde_json::from_value(answer).context("reading the permissions change")?;
            output::permissions_change(&change)
        }
    };
    output::emit(&text)?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use crate::args::{Cli, Command};
    use clap::Parser;
    use serde_json::json;

    fn share_body(flags: &[&str]) -> serde_json::Value {
        let argv = ["amiforge", "share", "ami-0123abcd"].iter().chain(flags);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Share(args) => serde_json::to_value(args.sharing.request()).unwrap(),
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn private_alone_shares_with_nobody() {
        assert_eq!(
            share_body(&["--private"]),
            json!({"public": false, "accounts": [], "organizations": [],
                   "organizational_units": [], "create_volume_permission": false})
        );
    }

    #[test]
    fn share_sends_the_whole_desired_state() {
        assert_eq!(
            share_body(&["--account", "012345678901", "--create-volume-permission"]),
            json!({"public": false, "accounts": ["012345678901"], "organizations": [],
                   "organizational_units": [], "create_volume_permission": true})
        );
        assert_eq!(share_body(&["--public"])["public"], true);
    }
}
