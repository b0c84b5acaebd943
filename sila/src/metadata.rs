//! SiLA client metadata: each item travels as a gRPC header `sila-<feature>-metadata-<id>-bin`
//! (the fully qualified metadata identifier, lower case, `/` as `-`). A call that accepts no metadata
//! (every call of `SiLAService`, and of features that define none) refuses a request carrying any,
//! with the framework error `NO_METADATA_ALLOWED`.

use crate::framework::framework_error::ErrorType;

/// The SiLA metadata headers of a request.
pub fn sila_keys(metadata: &tonic::metadata::MetadataMap) -> Vec<String> {
    metadata
        .keys()
        .map(|k| match k {
            tonic::metadata::KeyRef::Binary(b) => b.as_str().to_string(),
            tonic::metadata::KeyRef::Ascii(a) => a.as_str().to_string(),
        })
        .filter(|k| k.starts_with("sila-") && k.ends_with("-bin"))
        .collect()
}

/// Refuses a request that carries SiLA metadata.
pub fn refuse_any<T>(request: &tonic::Request<T>) -> Result<(), tonic::Status> {
    let keys = sila_keys(request.metadata());
    if keys.is_empty() {
        return Ok(());
    }
    Err(crate::error::framework(
        ErrorType::NoMetadataAllowed,
        format!("this call accepts no SiLA client metadata; it received {}", keys.join(", ")),
    ))
}
