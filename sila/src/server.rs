//! The `SiLAService` feature, which every SiLA server implements: who the server is, which features
//! it implements and their definitions. The server's UUID is made once and its name, set with
//! `SetServerName`, is kept: both live in `sila-server.json` in the data directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

use crate::features;
use crate::silaservice as ss;
use crate::{error, metadata, string};

/// What a server says about itself that does not change.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    /// `ServerType` (`[A-Z][a-zA-Z0-9]*`).
    pub server_type: String,
    /// `ServerDescription`.
    pub description: String,
    /// `ServerVersion` (`1.2`, `1.2.3`, `1.2.3_text`).
    pub version: String,
    /// `ServerVendorURL`.
    pub vendor_url: String,
    /// The name until one is set.
    pub default_name: String,
}

/// The persisted identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The server's UUID (lower-case, 36 characters).
    pub uuid: String,
    /// Its name.
    pub name: String,
}

/// Why the identity cannot be kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what this server writes.
    #[error("{path}: {message}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A version-4 UUID from the operating system's random source.
pub fn new_uuid() -> std::io::Result<String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() && !c.is_ascii_uppercase() }
        })
}

impl Identity {
    /// The identity kept in `dir`, made (and written) the first time.
    pub fn load_or_create(dir: &Path, default_name: &str) -> Result<Identity, IdentityError> {
        let path = dir.join("sila-server.json");
        let io = |source| IdentityError::Io { path: path.clone(), source };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let id: Identity = serde_json::from_str(&text)
                    .map_err(|e| IdentityError::Damaged { path: path.clone(), message: e.to_string() })?;
                if !is_uuid(&id.uuid) {
                    return Err(IdentityError::Damaged { path, message: format!("`{}` is not a UUID", id.uuid) });
                }
                Ok(id)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Identity { uuid: new_uuid().map_err(io)?, name: default_name.to_string() };
                id.save(dir)?;
                Ok(id)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Writes the identity whole (a new file renamed over the old one).
    pub fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        let path = dir.join("sila-server.json");
        let tmp = dir.join("sila-server.json.new");
        let io = |source| IdentityError::Io { path: path.clone(), source };
        let text = serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

/// The `SiLAService` feature.
#[derive(Clone)]
pub struct SilaService {
    dir: PathBuf,
    identity: Arc<Mutex<Identity>>,
    info: ServerInfo,
}

const PREFIX: &str = "org.silastandard/core/SiLAService/v1";

impl SilaService {
    /// The feature for the server whose identity is kept in `dir`.
    pub fn open(dir: &Path, info: ServerInfo) -> Result<SilaService, IdentityError> {
        let identity = Identity::load_or_create(dir, &info.default_name)?;
        Ok(SilaService { dir: dir.to_path_buf(), identity: Arc::new(Mutex::new(identity)), info })
    }

    /// The server's UUID.
    pub fn uuid(&self) -> String {
        self.identity.lock().map(|i| i.uuid.clone()).unwrap_or_default()
    }

    /// The server's name.
    pub fn name(&self) -> String {
        self.identity.lock().map(|i| i.name.clone()).unwrap_or_default()
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl ss::si_la_service_server::SiLaService for SilaService {
    async fn get_feature_definition(
        &self,
        request: Request<ss::GetFeatureDefinitionParameters>,
    ) -> Reply<ss::GetFeatureDefinitionResponses> {
        metadata::refuse_any(&request)?;
        let parameter = format!("{PREFIX}/Command/GetFeatureDefinition/Parameter/FeatureIdentifier");
        let id = request
            .into_inner()
            .feature_identifier
            .ok_or_else(|| error::validation(&parameter, "the FeatureIdentifier parameter is missing"))?
            .value;
        if !features::is_feature_identifier(&id) {
            return Err(error::validation(
                &parameter,
                format!("`{id}` is not a fully qualified feature identifier (originator/category/Identifier/vN)"),
            ));
        }
        let fdl = features::definition(&id).ok_or_else(|| {
            error::defined(
                &format!("{PREFIX}/DefinedExecutionError/UnimplementedFeature"),
                format!("this server does not implement `{id}`"),
            )
        })?;
        Ok(Response::new(ss::GetFeatureDefinitionResponses { feature_definition: Some(string(fdl)) }))
    }

    async fn set_server_name(
        &self,
        request: Request<ss::SetServerNameParameters>,
    ) -> Reply<ss::SetServerNameResponses> {
        metadata::refuse_any(&request)?;
        let parameter = format!("{PREFIX}/Command/SetServerName/Parameter/ServerName");
        let name = request
            .into_inner()
            .server_name
            .ok_or_else(|| error::validation(&parameter, "the ServerName parameter is missing"))?
            .value;
        if name.chars().count() > 255 {
            return Err(error::validation(
                &parameter,
                format!("a server name has at most 255 characters, not {}", name.chars().count()),
            ));
        }
        let mut identity = self.identity.lock().map_err(|_| error::undefined("the server identity is unavailable"))?;
        let updated = Identity { name, ..identity.clone() };
        updated.save(&self.dir).map_err(|e| error::undefined(format!("the name could not be kept: {e}")))?;
        *identity = updated;
        Ok(Response::new(ss::SetServerNameResponses {}))
    }

    async fn get_server_name(
        &self,
        request: Request<ss::GetServerNameParameters>,
    ) -> Reply<ss::GetServerNameResponses> {
        metadata::refuse_any(&request)?;
        Ok(Response::new(ss::GetServerNameResponses { server_name: Some(string(self.name())) }))
    }

    async fn get_server_type(
        &self,
        request: Request<ss::GetServerTypeParameters>,
    ) -> Reply<ss::GetServerTypeResponses> {
        metadata::refuse_any(&request)?;
        Ok(Response::new(ss::GetServerTypeResponses { server_type: Some(string(&self.info.server_type)) }))
    }

    async fn get_server_uuid(
        &self,
        request: Request<ss::GetServerUuidParameters>,
    ) -> Reply<ss::GetServerUuidResponses> {
        metadata::refuse_any(&request)?;
        Ok(Response::new(ss::GetServerUuidResponses { server_uuid: Some(string(self.uuid())) }))
    }

    async fn get_server_description(
        &self,
        request: Request<ss::GetServerDescriptionParameters>,
    ) -> Reply<ss::GetServerDescriptionResponses> {
        metadata::refuse_any(&request)?;
        Ok(Response::new(ss::GetServerDescriptionResponses {
            server_description: Some(string(&self.info.description)),
        }))
    }

    async fn get_server_version(
        &self,
        request: Request<ss::GetServerVersionParameters>,
    ) -> Reply<ss::GetServerVersionResponses> {
        metadata::refuse_any(&request)?;
        Ok(Response::new(ss::GetServerVersionResponses { server_version: Some(string(&self.info.version)) }))
    }

    async fn get_server_vendor_url(
        &self,
        request: Request<ss::GetServerVendorUrlParameters>,
    ) -> Reply<ss::GetServerVendorUrlResponses> {
        metadata::refuse_any(&request)?;
        Ok(Response::new(ss::GetServerVendorUrlResponses { server_vendor_url: Some(string(&self.info.vendor_url)) }))
    }

    async fn get_implemented_features(
        &self,
        request: Request<ss::GetImplementedFeaturesParameters>,
    ) -> Reply<ss::GetImplementedFeaturesResponses> {
        metadata::refuse_any(&request)?;
        let implemented_features = features::ALL.iter().map(|(id, _)| string(*id)).collect();
        Ok(Response::new(ss::GetImplementedFeaturesResponses { implemented_features }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("cellos-sila-id-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join("sila-server.json"));
        let a = Identity::load_or_create(&dir, "gw").unwrap();
        assert!(is_uuid(&a.uuid), "{}", a.uuid);
        assert_eq!(a.uuid.as_bytes()[14], b'4', "version 4");
        assert_eq!(Identity::load_or_create(&dir, "other").unwrap(), a, "the same after a restart");
        Identity { name: "renamed".into(), ..a.clone() }.save(&dir).unwrap();
        assert_eq!(Identity::load_or_create(&dir, "gw").unwrap().name, "renamed");
        std::fs::write(dir.join("sila-server.json"), "{\"uuid\":\"nope\",\"name\":\"x\"}").unwrap();
        assert!(Identity::load_or_create(&dir, "gw").unwrap_err().to_string().contains("`nope` is not a UUID"));
        assert_ne!(new_uuid().unwrap(), new_uuid().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
