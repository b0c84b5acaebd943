//! SiLA errors as gRPC statuses: status `ABORTED`, details the standard Base64 of a
//! `SiLAFramework.SiLAError` message (SiLA 2 Part B, error handling).

use base64::Engine;
use prost::Message;

use crate::framework::{self, framework_error::ErrorType, si_la_error::Error};

fn status(error: Error) -> tonic::Status {
    let bytes = framework::SiLaError { error: Some(error) }.encode_to_vec();
    tonic::Status::aborted(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A parameter failed its checks: `parameter` is its fully qualified identifier.
pub fn validation(parameter: &str, message: impl Into<String>) -> tonic::Status {
    status(Error::ValidationError(framework::ValidationError { parameter: parameter.into(), message: message.into() }))
}

/// A defined execution error: `error` is its fully qualified identifier.
pub fn defined(error: &str, message: impl Into<String>) -> tonic::Status {
    status(Error::DefinedExecutionError(framework::DefinedExecutionError {
        error_identifier: error.into(),
        message: message.into(),
    }))
}

/// An execution error the feature does not define.
pub fn undefined(message: impl Into<String>) -> tonic::Status {
    status(Error::UndefinedExecutionError(framework::UndefinedExecutionError { message: message.into() }))
}

/// A framework error.
pub fn framework(kind: ErrorType, message: impl Into<String>) -> tonic::Status {
    status(Error::FrameworkError(framework::FrameworkError { error_type: kind as i32, message: message.into() }))
}

/// Reads a SiLA error back from a status (for clients and tests); `None` when it is not one.
pub fn decode(status: &tonic::Status) -> Option<Error> {
    if status.code() != tonic::Code::Aborted {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(status.message()).ok()?;
    framework::SiLaError::decode(bytes.as_slice()).ok()?.error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_through_a_status() {
        let s = validation("a/b/C/v1/Command/X/Parameter/Y", "Y must be positive");
        assert_eq!(s.code(), tonic::Code::Aborted);
        assert_eq!(
            decode(&s),
            Some(Error::ValidationError(framework::ValidationError {
                parameter: "a/b/C/v1/Command/X/Parameter/Y".into(),
                message: "Y must be positive".into()
            }))
        );
        let s = framework(ErrorType::NoMetadataAllowed, "no metadata here");
        assert!(matches!(decode(&s), Some(Error::FrameworkError(f)) if f.error_type == 4));
        assert_eq!(decode(&tonic::Status::internal("x")), None);
        // The details are the standard Base64 of the message: byte for byte.
        let s = undefined("boom");
        assert_eq!(
            s.message(),
            base64::engine::general_purpose::STANDARD.encode([0x1a, 0x06, 0x0a, 0x04, b'b', b'o', b'o', b'm'])
        );
    }
}
