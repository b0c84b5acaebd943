//! YAML input as the legacy files are written: block mappings, read into JSON values.
//!
//! The legacy platform read YAML with PyYAML, which lets a repeated mapping key silently replace the
//! first. cellos reads such a file only when nothing is lost: a repeated key whose first block is
//! contained in the last is merged (the last kept) and reported as a warning; one that would drop or
//! change a value is an error naming both lines.

use serde_json::Value;

use crate::error::{Result, StoreError};

/// A key line of a block mapping.
#[derive(Clone, Debug)]
struct KeyLine {
    line: usize,
    indent: usize,
    key: String,
}

fn key_lines(text: &str) -> Vec<KeyLine> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        let key = if let Some(rest) = trimmed.strip_prefix('"') {
            match rest.find('"') {
                Some(end) if rest[end + 1..].starts_with(':') => rest[..end].to_string(),
                _ => continue,
            }
        } else {
            match trimmed.find(':') {
                Some(p) if trimmed[p + 1..].is_empty() || trimmed[p + 1..].starts_with(' ') => {
                    trimmed[..p].trim().to_string()
                }
                _ => continue,
            }
        };
        out.push(KeyLine { line: i + 1, indent, key });
    }
    out
}

/// The 1-based line of a key path (`["cell_lines", "HEK293T", "doubling_time_h"]`), its last occurrence.
pub fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let keys = key_lines(text);
    let mut from = 0;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for part in path {
        let mut hit = None;
        for (j, k) in keys.iter().enumerate().skip(from) {
            if let Some(pi) = parent_indent
                && k.indent <= pi
                && found.is_some_and(|f: usize| j > f)
            {
                break;
            }
            if k.key == *part && parent_indent.is_none_or(|pi| k.indent > pi) {
                hit = Some(j);
            }
        }
        let j = hit?;
        found = Some(j);
        from = j + 1;
        parent_indent = Some(keys[j].indent);
    }
    found.map(|j| keys[j].line)
}

/// A repeated key: where it appears first and last, at one indentation under one parent.
fn duplicates(text: &str) -> Vec<(KeyLine, KeyLine)> {
    let keys = key_lines(text);
    let mut out = Vec::new();
    // Frames of open mappings: (indent, keys seen there with their entry).
    let mut stack: Vec<(usize, Vec<KeyLine>)> = Vec::new();
    for k in keys {
        while stack.last().is_some_and(|(i, _)| *i > k.indent) {
            stack.pop();
        }
        match stack.last_mut() {
            Some((i, seen)) if *i == k.indent => {
                if let Some(first) = seen.iter().find(|s| s.key == k.key) {
                    out.push((first.clone(), k.clone()));
                }
                seen.push(k);
            }
            _ => stack.push((k.indent, vec![k])),
        }
    }
    out
}

/// The text of the block a key line opens (the key line and every deeper line after it).
fn block(text: &str, at: &KeyLine) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate().skip(at.line - 1) {
        let t = l.trim_start();
        let indent = l.len() - t.len();
        if i > at.line - 1 && !t.is_empty() && !t.starts_with('#') && indent <= at.indent {
            break;
        }
        out.push(l.get(at.indent..).unwrap_or(""));
    }
    out.join("\n")
}

/// Whether every leaf of `a` is in `b` with the same value; the first path where it is not.
fn contained(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = contained(v, w, &p) {
                            return Some(d);
                        }
                    }
                    None => return Some(p),
                }
            }
            None
        }
        _ if a == b => None,
        _ => Some(path.to_string()),
    }
}

fn syntax(file: &str, e: &serde_norway::Error) -> StoreError {
    let location =
        e.location().map_or_else(|| "start".to_string(), |l| format!("line {}, column {}", l.line(), l.column()));
    let msg = e.to_string();
    // The message repeats the location; keep the part before it.
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    StoreError::input(file, location, msg)
}

/// Reads YAML text into JSON. Returns the value and warnings (merged repeated keys).
pub fn load(file: &str, text: &str) -> Result<(Value, Vec<String>)> {
    if let Some(pos) = text.find('\t').filter(|_| text.lines().any(|l| l.starts_with('\t'))) {
        let line = text[..pos].matches('\n').count() + 1;
        return Err(StoreError::input(
            file,
            format!("line {line}"),
            "tab used for indentation (YAML indents with spaces)",
        ));
    }
    match serde_norway::from_str::<serde_norway::Value>(text) {
        Ok(_) => {}
        Err(e) if e.to_string().contains("duplicate entry with key") => {}
        Err(e) => return Err(syntax(file, &e)),
    }
    let mut warnings = Vec::new();
    for (first, last) in duplicates(text) {
        let parse = |k: &KeyLine| -> Result<Value> {
            let v: Value = serde_norway::from_str(&block(text, k)).map_err(|e| syntax(file, &e))?;
            Ok(v.get(&k.key).cloned().unwrap_or(Value::Null))
        };
        let (a, b) = (parse(&first)?, parse(&last)?);
        if let Some(path) = contained(&a, &b, &first.key) {
            return Err(StoreError::input(
                file,
                format!("line {}, column {}", last.line, last.indent + 1),
                format!("key `{}` repeats the one at line {} and would lose or change `{path}`", last.key, first.line),
            ));
        }
        warnings.push(format!(
            "{file}: key `{}` at line {} repeats the one at line {}; the earlier block is contained in the later one, which is kept",
            last.key, last.line, first.line
        ));
    }
    let value: Value = serde_norway::from_str(text).map_err(|e| syntax(file, &e))?;
    Ok((value, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossless_duplicate_is_merged() {
        let text = "lines:\n  A:\n    x: 1\n  A:\n    x: 1\n    y: 2\n  B:\n    x: 3\n";
        let (v, w) = load("f.yaml", text).unwrap();
        assert_eq!(v["lines"]["A"]["y"], 2);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("key `A` at line 4 repeats the one at line 2"));
    }

    #[test]
    fn conflicting_duplicate_is_an_error() {
        let text = "lines:\n  A:\n    x: 1\n  B:\n    x: 3\n  A:\n    x: 2\n";
        let e = load("f.yaml", text).unwrap_err().to_string();
        assert_eq!(
            e,
            "f.yaml: line 6, column 3: key `A` repeats the one at line 2 and would lose or change `A.x` (nothing was imported)"
        );
    }

    #[test]
    fn syntax_errors_have_locations() {
        let e = load("f.yaml", "a: [1, 2\nb: 3\n").unwrap_err().to_string();
        assert!(e.starts_with("f.yaml: line 2, column 2: did not find expected ',' or ']'"), "{e}");
        let e = load("f.yaml", "a:\n\tb: 1\n").unwrap_err().to_string();
        assert!(e.contains("line 2: tab"), "{e}");
    }

    #[test]
    fn locate_paths() {
        let text = "top:\n  A:\n    x: 1\n    y: 2\n  B:\n    x: 3\nother:\n  x: 4\n";
        assert_eq!(locate(text, &["top", "B", "x"]), Some(6));
        assert_eq!(locate(text, &["top", "A", "y"]), Some(4));
        assert_eq!(locate(text, &["other", "x"]), Some(8));
        assert_eq!(locate(text, &["top", "C"]), None);
    }
}
