//! Configuration layers: built-in defaults < TOML file < environment
//! variables < command-line flags. Each layer is a TOML table merged key by
//! key (nested tables too) over the ones below, and the result is read once
//! into the caller's serde struct: every key is listed once, in that
//! struct, and unknown keys are refused. The server and the router both
//! load their configuration this way.
//!
//! Written here rather than taken from a layering crate (figment): this is
//! ~100 lines over the `toml` crate we already build, where figment would
//! add a second `toml` and a parser-generator crate to every build.

use anyhow::Context;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Layers merged so far, lowest first, and which environment variable set
/// which key (an error then names the variable, not only the key).
#[derive(Debug, Default)]
pub struct Layers(toml::Table, Vec<(String, String)>);

impl Layers {
    /// A TOML file's keys over the layers below.
    pub fn file(mut self, path: &Path) -> anyhow::Result<Self> {
        let text = fathom_index::format::files::read_regular_text(path, 1 << 20)
            .with_context(|| format!("reading config {}", path.display()))?;
        let t: toml::Table = toml::from_str(&text).with_context(|| format!("config {}", path.display()))?;
        merge(&mut self.0, t);
        Ok(self)
    }

    /// `{prefix}KEY` sets `key`; `{prefix}TABLE__KEY` sets `key` in
    /// `[table]`. Only variables naming a key of `T` are read: other
    /// variables with the same prefix belong to other parts (logs, clients).
    /// Values are TOML scalars: numbers and booleans typed, else strings.
    pub fn env<T: Serialize + Default>(mut self, prefix: &str) -> Self {
        let keys = keys::<T>();
        let mut vars: Vec<(String, String)> = std::env::vars().collect();
        vars.sort();
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(prefix) else { continue };
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            if !keys.contains(&path[0]) {
                continue;
            }
            let mut t = toml::Table::new();
            let (last, tables) = path.split_last().unwrap_or((&path[0], &[]));
            t.insert(last.clone(), scalar(&value));
            for table in tables.iter().rev() {
                let mut outer = toml::Table::new();
                outer.insert(table.clone(), toml::Value::Table(t));
                t = outer;
            }
            merge(&mut self.0, t);
            self.1.push((path.join("."), name));
        }
        self
    }

    /// A flag's value, when given (`key` may be `table.key`).
    pub fn set(mut self, key: &str, v: Option<impl Into<toml::Value>>) -> Self {
        if let Some(v) = v {
            let mut t = toml::Table::new();
            match key.split_once('.') {
                Some((table, k)) => {
                    let mut inner = toml::Table::new();
                    inner.insert(k.to_string(), v.into());
                    t.insert(table.to_string(), toml::Value::Table(inner));
                }
                None => {
                    t.insert(key.to_string(), v.into());
                }
            }
            merge(&mut self.0, t);
        }
        self
    }

    /// The merged layers as `T` (its serde defaults fill what no layer
    /// says). A key `T` does not have is refused here rather than by serde
    /// (`deny_unknown_fields` does nothing beside `#[serde(flatten)]`), and
    /// an error inside flattened keys, which serde reports without the key,
    /// is given the key it came from.
    pub fn read<T: DeserializeOwned + Serialize + Default>(self) -> anyhow::Result<T> {
        let (table, origins) = (self.0, self.1);
        let known = keys::<T>();
        if let Some(k) = table.keys().find(|k| !known.contains(k)) {
            let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            return Err(named(&origins, format!("unknown field `{k}`, expected one of {}", expected.join(", "))));
        }
        toml::Value::Table(table.clone()).try_into::<T>().map_err(|e| {
            let msg = e.to_string();
            // Which key: the first that fails on its own.
            let culprit = table.keys().find(|k| {
                let one = toml::Table::from_iter([(k.to_string(), table[k.as_str()].clone())]);
                toml::Value::Table(one).try_into::<T>().is_err()
            });
            match culprit {
                Some(k) if !msg.contains(&format!("`{k}`")) => named(&origins, format!("{}\nin `{k}`", msg.trim_end())),
                _ => named(&origins, msg),
            }
        })
    }
}

/// An error naming the environment variable that set its key, if one did:
/// serde names the key as `key` (or `table.key`); a later layer (a flag)
/// may have set it again, but the variable is the lead.
fn named(origins: &[(String, String)], msg: String) -> anyhow::Error {
    match origins.iter().rev().find(|(key, _)| msg.contains(&format!("`{key}`"))) {
        Some((_, var)) => anyhow::anyhow!("environment variable {var}: {msg}"),
        None => anyhow::anyhow!(msg),
    }
}

/// The top-level keys of configuration struct `T`, flattened parts
/// included: those of its defaults serialized (`None` keys too).
pub fn keys<T: Serialize + Default>() -> Vec<String> {
    match serde_json::to_value(T::default()) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// `over`'s keys into `base`; tables merge, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// An environment value as TOML: numbers and booleans typed, else a string.
pub fn scalar(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Some(f) = v.contains('.').then(|| v.parse::<f64>().ok()).flatten() {
        // Only with a decimal point: "inf" and "nan" stay strings.
        toml::Value::Float(f)
    } else if let Ok(b) = v.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(v.to_string())
    }
}

/// The field names of struct `T`, as serde sees them: a deserializer that
/// only records what `deserialize_struct` is asked for.
pub fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fields recorded")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> de::Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut f = Fields(None);
    let _ = T::deserialize(&mut f);
    f.0.unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        a: u32,
        #[serde(default)]
        b: u32,
    }

    #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[test]
    fn tables_merge_key_by_key_and_later_layers_win() {
        let dir = std::env::temp_dir().join(format!("fathom-layers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, "name = \"file\"\n[inner]\na = 1\nb = 2\n").unwrap();
        let o: Outer = Layers::default().file(&f).unwrap().set("inner.b", Some(5)).read().unwrap();
        assert_eq!(o, Outer { name: "file".into(), inner: Inner { a: 1, b: 5 } });
        assert_eq!(field_names::<Outer>(), ["name", "inner"]);
        assert_eq!(scalar("0.5"), toml::Value::Float(0.5));
        assert_eq!(scalar("12"), toml::Value::Integer(12));
        assert_eq!(scalar("h:1|g:2"), toml::Value::String("h:1|g:2".into()));
        assert_eq!(scalar("inf"), toml::Value::String("inf".into()));
    }

    #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(default)]
    struct Part {
        limit: u32,
    }

    #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(default)]
    struct Whole {
        name: String,
        #[serde(flatten)]
        part: Part,
    }

    /// What serde alone gets wrong beside a flatten: unknown keys pass, and
    /// an error in a flattened key does not name it.
    #[test]
    fn flattened_keys_are_keys_unknown_ones_are_refused_and_errors_name_them() {
        let mut k = keys::<Whole>();
        k.sort();
        assert_eq!(k, ["limit", "name"]);
        let w: Whole = Layers::default().set("limit", Some(3)).set("name", Some("a")).read().unwrap();
        assert_eq!(w, Whole { name: "a".into(), part: Part { limit: 3 } });
        let e = Layers::default().set("limt", Some(3)).read::<Whole>().unwrap_err().to_string();
        assert!(e.contains("unknown field `limt`") && e.contains("`limit`"), "{e}");
        let e = Layers::default().set("limit", Some("x")).read::<Whole>().unwrap_err().to_string();
        assert!(e.contains("in `limit`"), "{e}");
        let e = Layers::default().set("name", Some(5)).read::<Whole>().unwrap_err().to_string();
        assert!(e.contains("`name`"), "{e}");
    }
}
