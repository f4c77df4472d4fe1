//! Reading a backend's JSON with the path of every value at hand, so that every error names
//! its JSON path, and every field the importer did not read is an error, never dropped.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};

use crate::rollout::error::{Error, Result};

/// Parses `text` (the file `file`) into a value; syntax errors carry line and column.
pub fn parse(text: &str, file: &Path) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Json {
        file: file.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// A value and where it is.
#[derive(Clone)]
pub struct Node<'a> {
    pub file: &'a Path,
    pub path: String,
    pub value: &'a Value,
}

/// An object whose fields are taken one by one; [`Obj::finish`] refuses the rest.
pub struct Obj<'a> {
    file: &'a Path,
    path: String,
    map: &'a Map<String, Value>,
    taken: RefCell<BTreeSet<String>>,
}

pub fn error(file: &Path, path: &str, message: impl Into<String>) -> Error {
    Error::Import {
        file: file.to_path_buf(),
        path: path.to_string(),
        message: message.into(),
    }
}

impl<'a> Node<'a> {
    pub fn error(&self, message: impl Into<String>) -> Error {
        error(self.file, &self.path, message)
    }

    fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    pub fn obj(&self) -> Result<Obj<'a>> {
        match self.value {
            Value::Object(map) => Ok(Obj {
                file: self.file,
                path: self.path.clone(),
                map,
                taken: RefCell::new(BTreeSet::new()),
            }),
            _ => Err(self.error(format!("expected an object, found {}", self.kind()))),
        }
    }

    pub fn str(&self) -> Result<&'a str> {
        self.value
            .as_str()
            .ok_or_else(|| self.error(format!("expected a string, found {}", self.kind())))
    }

    pub fn u64(&self) -> Result<u64> {
        self.value.as_u64().ok_or_else(|| {
            self.error(format!(
                "expected a whole number >= 0, found {}",
                self.value
            ))
        })
    }

    pub fn f64(&self) -> Result<f64> {
        self.value
            .as_f64()
            .ok_or_else(|| self.error(format!("expected a number, found {}", self.kind())))
    }

    pub fn bool(&self) -> Result<bool> {
        self.value
            .as_bool()
            .ok_or_else(|| self.error(format!("expected true or false, found {}", self.kind())))
    }

    /// The elements with their paths (`path[i]`).
    pub fn array(&self) -> Result<Vec<Node<'a>>> {
        let Value::Array(items) = self.value else {
            return Err(self.error(format!("expected an array, found {}", self.kind())));
        };
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, value)| Node {
                file: self.file,
                path: format!("{}[{i}]", self.path),
                value,
            })
            .collect())
    }
}

impl<'a> Obj<'a> {
    /// The whole document as an object at `$`.
    pub fn root(file: &'a Path, value: &'a Value) -> Result<Obj<'a>> {
        Node {
            file,
            path: "$".into(),
            value,
        }
        .obj()
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn file(&self) -> &'a Path {
        self.file
    }

    /// The path of field `key`.
    pub fn field_path(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    pub fn error(&self, key: &str, message: impl Into<String>) -> Error {
        error(self.file, &self.field_path(key), message)
    }

    /// Field `key`, if present (`null` counts as absent); marks it read.
    pub fn opt(&self, key: &str) -> Option<Node<'a>> {
        let value = self.map.get(key)?;
        self.taken.borrow_mut().insert(key.to_string());
        if value.is_null() {
            return None;
        }
        Some(Node {
            file: self.file,
            path: self.field_path(key),
            value,
        })
    }

    /// Field `key`, which must be present.
    pub fn req(&self, key: &str) -> Result<Node<'a>> {
        self.opt(key)
            .ok_or_else(|| self.error(key, "missing (required by the API)"))
    }

    /// Refuses field `key` if present: `why` says what the rig cannot honour.
    pub fn refuse(&self, key: &str, why: &str) -> Result<()> {
        match self.opt(key) {
            Some(n) => Err(n.error(format!("cannot be honoured: {why}"))),
            None => Ok(()),
        }
    }

    /// Every field not read is an error naming it.
    pub fn finish(&self, what: &str) -> Result<()> {
        let taken = self.taken.borrow();
        match self.map.keys().find(|k| !taken.contains(*k)) {
            Some(k) => Err(self.error(
                k,
                format!("unknown or unsupported field of {what} (see docs/runbooks.md for the fields each importer honours)"),
            )),
            None => Ok(()),
        }
    }
}
