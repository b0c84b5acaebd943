//! The feature definitions this server implements, by fully qualified identifier.

/// `org.silastandard/core/SiLAService/v1`.
pub const SILA_SERVICE: &str = "org.silastandard/core/SiLAService/v1";
/// `io.cellos/lab/DoseFinding/v1`.
pub const DOSE_FINDING: &str = "io.cellos/lab/DoseFinding/v1";

/// The SiLAService feature definition (vendored).
pub const SILA_SERVICE_FDL: &str = include_str!("../vendor/fdl/SiLAService.sila.xml");
/// The DoseFinding feature definition (ours).
pub const DOSE_FINDING_FDL: &str = include_str!("../features/DoseFinding.sila.xml");

/// Every implemented feature: identifier and definition.
pub const ALL: [(&str, &str); 2] = [(SILA_SERVICE, SILA_SERVICE_FDL), (DOSE_FINDING, DOSE_FINDING_FDL)];

/// A feature's definition, if implemented.
pub fn definition(id: &str) -> Option<&'static str> {
    ALL.iter().find(|(f, _)| *f == id).map(|(_, d)| *d)
}

/// Whether `id` is a fully qualified feature identifier (`originator/category/Identifier/vN`).
pub fn is_feature_identifier(id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    let lower = |s: &str| {
        let mut c = s.chars();
        c.next().is_some_and(|f| f.is_ascii_lowercase())
            && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '.')
            && s.len() <= 255
    };
    match parts.as_slice() {
        [originator, category, identifier, version] => {
            lower(originator)
                && lower(category)
                && identifier.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && identifier.chars().all(|c| c.is_ascii_alphanumeric())
                && version.strip_prefix('v').is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for (id, fdl) in ALL {
            assert!(is_feature_identifier(id), "{id}");
            let name = id.split('/').nth(2).unwrap();
            assert!(fdl.contains(&format!("<Identifier>{name}</Identifier>")), "{id}");
        }
        for bad in
            ["SiLAService", "org.silastandard/core/SiLAService", "Org/core/X/v1", "org/core/x/v1", "org/core/X/1"]
        {
            assert!(!is_feature_identifier(bad), "{bad}");
        }
        assert_eq!(definition(SILA_SERVICE), Some(SILA_SERVICE_FDL));
        assert_eq!(definition("org.silastandard/core/SiLAService/v2"), None);
    }
}
