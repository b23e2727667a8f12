//! AWS adapters: the calls the steps make, each wrapped so that SDK types and error codes stay
//! here and the steps speak in domain terms.

pub mod ec2;
pub mod events;
pub mod kms;
pub mod s3;
pub mod sfn;

/// The SDK clients a process uses, built once from one shared configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Step Functions.
    pub sfn: aws_sdk_sfn::Client,
    /// KMS.
    pub kms: aws_sdk_kms::Client,
    /// EventBridge.
    pub events: aws_sdk_eventbridge::Client,
    /// The region calls go to.
    pub region: Option<String>,
}

impl Clients {
    /// Loads the standard AWS configuration (region, credentials, `AWS_ENDPOINT_URL`) and
    /// builds every client from it.
    pub async fn from_env() -> Self {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_config(&shared)
    }

    /// Builds every client from one configuration.
    pub fn from_config(shared: &aws_config::SdkConfig) -> Self {
        // S3 emulators and custom endpoints answer path-style requests; AWS accepts them too.
        let s3 = aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(true)
            .build();
        Self {
            ec2: aws_sdk_ec2::Client::new(shared),
            s3: aws_sdk_s3::Client::from_conf(s3),
            dynamodb: aws_sdk_dynamodb::Client::new(shared),
            sfn: aws_sdk_sfn::Client::new(shared),
            kms: aws_sdk_kms::Client::new(shared),
            events: aws_sdk_eventbridge::Client::new(shared),
            region: shared.region().map(ToString::to_string),
        }
    }
}

/// Builds SDK clients whose answers come from mock rules, for unit tests.
#[cfg(any(test, feature = "mocks"))]
pub mod mock {
    use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode};

    macro_rules! mock_client_of {
        ($fn_name:ident, $krate:ident) => {
            /// A client answering from `rules` (any matching rule, in any order).
            pub fn $fn_name(rules: &[&Rule]) -> $krate::Client {
                let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
                for rule in rules {
                    interceptor = interceptor.with_rule(rule);
                }
                let config = $krate::Config::builder()
                    .behavior_version($krate::config::BehaviorVersion::latest())
                    .region($krate::config::Region::new("us-east-1"))
                    .credentials_provider($krate::config::Credentials::new(
                        "a", "b", None, None, "test",
                    ))
                    .http_client(aws_smithy_mocks::create_mock_http_client())
                    .interceptor(interceptor)
                    .retry_config($krate::config::retry::RetryConfig::disabled())
                    .build();
                $krate::Client::from_conf(config)
            }
        };
    }
    mock_client_of!(ec2, aws_sdk_ec2);
    mock_client_of!(s3, aws_sdk_s3);
    mock_client_of!(kms, aws_sdk_kms);
    mock_client_of!(events, aws_sdk_eventbridge);
    mock_client_of!(sfn, aws_sdk_sfn);
    mock_client_of!(dynamodb, aws_sdk_dynamodb);

    /// DescribeImages finding nothing: no image holds the name asked about.
    pub fn no_images() -> Rule {
        aws_smithy_mocks::mock!(aws_sdk_ec2::Client::describe_images).then_output(|| {
            aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder().build()
        })
    }

    /// HeadObject finding nothing: no object at the path asked about.
    pub fn no_object() -> Rule {
        aws_smithy_mocks::mock!(aws_sdk_s3::Client::head_object).then_error(|| {
            aws_sdk_s3::operation::head_object::HeadObjectError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("NotFound")
                    .build(),
            )
        })
    }
}
