//! # cellos-sila: SiLA 2 for the cellos gateway
//!
//! - [`proto`]: the code generated from the vendored SiLA protobuf files (`vendor/proto`, the framework
//!   and `SiLAService`) and from our features' (`features/`, each generated from its feature definition
//!   by the standard's `fdl2proto` stylesheet), compiled by `protox` (no `protoc` needed).
//! - [`features`]: the feature definitions (FDL) served by `GetFeatureDefinition`.
//! - [`error`]: SiLA errors as gRPC statuses (`ABORTED`, the Base64 of a `SiLAError` as details).
//! - [`metadata`]: the metadata rules (SiLA client metadata travels as `sila-…-bin` headers).
//! - [`server`]: the `SiLAService` feature over a persisted server identity (UUID made once, the name
//!   set with `SetServerName` kept across restarts).
//! - [`tls`]: the server's TLS: a certificate authority made once and a server certificate it signs,
//!   carrying the server UUID (OID 1.3.6.1.4.1.58583), as PEM files.
#![deny(missing_docs)]

pub mod error;
pub mod features;
pub mod metadata;
pub mod server;
pub mod tls;

/// Generated code, by protobuf package.
#[allow(missing_docs, non_camel_case_types, clippy::all, clippy::pedantic)]
pub mod proto {
    /// `sila2.*`
    pub mod sila2 {
        /// `sila2.org.*`
        pub mod org {
            /// `sila2.org.silastandard`: the framework types, and the core features.
            pub mod silastandard {
                tonic::include_proto!("sila2.org.silastandard");
                /// `sila2.org.silastandard.core`
                pub mod core {
                    /// `SiLAService`
                    pub mod silaservice {
                        /// Version 1.
                        pub mod v1 {
                            tonic::include_proto!("sila2.org.silastandard.core.silaservice.v1");
                        }
                    }
                }
            }
        }
        /// `sila2.io.*`
        pub mod io {
            /// `sila2.io.cellos`
            pub mod cellos {
                /// `sila2.io.cellos.lab`
                pub mod lab {
                    /// `DoseFinding`
                    pub mod dosefinding {
                        /// Version 1.
                        pub mod v1 {
                            tonic::include_proto!("sila2.io.cellos.lab.dosefinding.v1");
                        }
                    }
                }
            }
        }
    }
}

pub use proto::sila2::io::cellos::lab::dosefinding::v1 as dose_finding;
pub use proto::sila2::org::silastandard as framework;
pub use proto::sila2::org::silastandard::core::silaservice::v1 as silaservice;

/// A SiLA String.
pub fn string(value: impl Into<String>) -> framework::String {
    framework::String { value: value.into() }
}
