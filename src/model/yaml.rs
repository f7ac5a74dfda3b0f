//! The one way the project reads a YAML document (a plan, the config):
//! text checked before it is parsed, aliases bounded, and every refusal
//! placed on a line and said in words a user knows, not serde's.

use serde::de::{DeserializeOwned, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;

/// Why a document was refused: the line (1-based), the field's path
/// (`tasks[1].priority`, or `yaml` where none applies) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

/// The bound on what a document may expand to through its aliases, in
/// bytes of scalars plus one per node: four times the text, at least 1 MiB.
/// A plain document stays well inside it; an alias bomb is refused before
/// it takes memory.
pub fn expansion_bound(text: &str) -> usize {
    (4 * text.len()).max(1 << 20)
}

/// `bytes` as text: UTF-8 with no NUL byte; a refusal names the line of the
/// first byte at fault.
pub fn decode(bytes: &[u8]) -> Result<&str, YamlError> {
    let line_at = |at: usize| 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
    let text = std::str::from_utf8(bytes).map_err(|e| YamlError {
        line: line_at(e.valid_up_to()),
        field: "yaml".into(),
        message: "not UTF-8 text (save the file as UTF-8)".into(),
    })?;
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(YamlError {
            line: line_at(at),
            field: "yaml".into(),
            message: "holds a NUL byte".into(),
        });
    }
    Ok(text)
}

/// Parse `text` as a `T` whose top-level keys are `keys` (named when the
/// document is not a map). Aliases are expanded only up to
/// [`expansion_bound`].
pub fn parse<T: DeserializeOwned>(text: &str, keys: &[&str]) -> Result<T, YamlError> {
    let bound = expansion_bound(text);
    let left = Cell::new(bound);
    let counted =
        Count { left: &left, bound }.deserialize(serde_yaml::Deserializer::from_str(text));
    if let Err(e) = counted {
        return Err(humane(text, &e, keys));
    }
    serde_yaml::from_str(text).map_err(|e| humane(text, &e, keys))
}

/// serde_yaml's error as a user would say it, on the line it belongs to.
fn humane(text: &str, e: &serde_yaml::Error, keys: &[&str]) -> YamlError {
    let mut line = e.location().map_or(1, |l| l.line());
    let raw = e.to_string();
    let raw = match raw.rfind(" at line ") {
        Some(at) => &raw[..at],
        None => raw.as_str(),
    };
    // A syntax error reads `what at line N column M, while parsing X`; the
    // line where X began is where the fault is to be seen (an unclosed
    // bracket, not the end of the file), and the positions are ours to print.
    let syntax;
    let raw = match raw.split_once(" at line ") {
        Some((what, rest)) => {
            if let Some(context) = e.to_string().rsplit(" at line ").next() {
                let n: String = context.chars().take_while(char::is_ascii_digit).collect();
                line = n.parse().unwrap_or(line);
            }
            let during = rest.split_once(", ").map_or("", |(_, d)| d);
            syntax = match during.is_empty() {
                true => what.to_string(),
                false => format!("{what}, {during}"),
            };
            syntax.as_str()
        }
        None => raw,
    };
    // serde_yaml writes `path: why` where a value deep in the document is
    // at fault; a path has no spaces.
    let (path, why) = match raw.split_once(": ") {
        Some((path, why)) if !path.contains(' ') && path != "." => (path.to_string(), why),
        _ => (String::new(), raw),
    };
    if let Some(field) = quoted(why, "unknown field `") {
        let known: Vec<&str> = why.split('`').skip(3).step_by(2).collect();
        let field_path = join(&path, &field);
        return YamlError {
            line: refine(text, line, &field),
            message: match known.is_empty() {
                true => "unknown field".into(),
                false => format!("unknown field (the fields here: {})", known.join(", ")),
            },
            field: field_path,
        };
    }
    if let Some(field) = quoted(why, "duplicate field `") {
        return YamlError {
            line: second_line_of(text, line, &field),
            field: join(&path, &field),
            message: "given twice".into(),
        };
    }
    if let Some(field) = quoted(why, "missing field `") {
        return YamlError {
            line,
            field: join(&path, &field),
            message: "missing".into(),
        };
    }
    if why == "repetition limit exceeded" || why == "recursion limit exceeded" {
        return YamlError {
            line,
            field: "yaml".into(),
            message: format!(
                "the document expands through its aliases or nesting past the bound \
                 ({} bytes: four times its own size, at least 1 MiB)",
                expansion_bound(text)
            ),
        };
    }
    if why.contains("did not match any variant of untagged enum") {
        return YamlError {
            line,
            field: or_yaml(path),
            message: "expected a list of words or one line of text".into(),
        };
    }
    if let Some(rest) = why.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        let found = words_of(found);
        if expected.starts_with("struct ") {
            let message = match keys.is_empty() {
                true => format!("expected a map of keys, found {found}"),
                false => format!(
                    "expected a map of keys ({}), found {found}",
                    keys.join(", ")
                ),
            };
            return YamlError {
                line,
                field: or_yaml(path),
                message,
            };
        }
        return YamlError {
            line,
            field: or_yaml(path),
            message: format!("expected {}, found {found}", words_of(expected)),
        };
    }
    if why.starts_with("invalid value: integer") {
        return YamlError {
            line,
            field: or_yaml(path),
            message: format!(
                "out of range ({})",
                why.trim_start_matches("invalid value: ")
            ),
        };
    }
    YamlError {
        line,
        field: or_yaml(path),
        message: why.to_string(),
    }
}

fn or_yaml(path: String) -> String {
    match path.is_empty() {
        true => "yaml".into(),
        false => path,
    }
}

fn join(path: &str, field: &str) -> String {
    match path.is_empty() {
        true => field.to_string(),
        false => format!("{path}.{field}"),
    }
}

/// The name quoted after `prefix` (`` unknown field `x` `` → `x`).
fn quoted(text: &str, prefix: &str) -> Option<String> {
    let rest = text.split_once(prefix)?.1;
    Some(rest.split('`').next()?.to_string())
}

/// serde's names of types and values as a user says them.
fn words_of(serde: &str) -> String {
    let serde = serde.trim();
    for (prefix, word) in [
        ("string ", "the text "),
        ("integer ", "the number "),
        ("floating point ", "the number "),
        ("boolean ", ""),
    ] {
        if let Some(value) = serde.strip_prefix(prefix) {
            return format!("{word}{value}");
        }
    }
    match serde {
        "i64" | "i32" | "u64" | "u32" | "usize" | "u8" | "u16" => "a whole number".into(),
        "f64" | "f32" => "a number".into(),
        "a sequence" | "sequence" => "a list".into(),
        "a map" | "map" => "a map".into(),
        "a string" | "string" => "text".into(),
        "a boolean" | "bool" => "true or false".into(),
        "unit value" => "nothing".into(),
        other => other.to_string(),
    }
}

/// serde_yaml places some errors at the enclosing map; move to `key:`'s own
/// line at or after `line`.
fn refine(text: &str, line: usize, key: &str) -> usize {
    text.lines()
        .enumerate()
        .skip(line.saturating_sub(1))
        .find(|(_, l)| mentions_key(l, key))
        .map_or(line, |(i, _)| i + 1)
}

/// The line where `key` appears a second time (a duplicate), else `line`.
fn second_line_of(text: &str, line: usize, key: &str) -> usize {
    text.lines()
        .enumerate()
        .skip(line.saturating_sub(1))
        .filter(|(_, l)| mentions_key(l, key))
        .nth(1)
        .map_or(line, |(i, _)| i + 1)
}

/// Whether `line` holds `key:` as a block key or inside a flow map.
pub fn mentions_key(line: &str, key: &str) -> bool {
    let trimmed = line.trim_start().trim_start_matches("- ");
    trimmed.starts_with(&format!("{key}:"))
        || line.contains(&format!("{{{key}:"))
        || line.contains(&format!("{{ {key}:"))
        || line.contains(&format!(", {key}:"))
        || line.contains(&format!(",{key}:"))
}

/// A visitor that walks a whole document, aliases expanded as serde_yaml
/// replays them, and stores nothing: it only spends from `left`.
struct Count<'a> {
    left: &'a Cell<usize>,
    bound: usize,
}

impl Count<'_> {
    fn spend<E: serde::de::Error>(&self, n: usize) -> Result<(), E> {
        match self.left.get().checked_sub(n.max(1)) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(format!(
                "the document expands through its aliases to more than {} bytes \
                 (the bound: four times its own size, at least 1 MiB)",
                self.bound
            ))),
        }
    }

    fn again(&self) -> Count<'_> {
        Count {
            left: self.left,
            bound: self.bound,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        self.spend(s.len())
    }
    fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<(), E> {
        self.spend(b.len())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.spend(1)?;
        while seq.next_element_seed(self.again())?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.spend(1)?;
        while map.next_key_seed(self.again())?.is_some() {
            map.next_value_seed(self.again())?;
        }
        Ok(())
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        let ((), variant) = data.variant_seed(self.again())?;
        variant.newtype_variant_seed(self.again())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        items: Vec<String>,
    }

    fn refuse(text: &str) -> YamlError {
        parse::<Doc>(text, &["name", "count", "items"]).expect_err(text)
    }

    #[test]
    fn an_alias_bomb_is_refused_with_the_bound() {
        // Within serde_yaml's own repetition limit, past ours: 1,500 copies
        // of a 1 KB string from an 8 KB file.
        let text = format!(
            "name: &n {}\nitems: [{}]\n",
            "x".repeat(1000),
            ["*n"; 1500].join(", ")
        );
        let e = refuse(&text);
        assert!(e.message.contains("expands through its aliases"), "{e:?}");
        assert!(e.message.contains("1048576"), "{e:?}");
        // Past both: a billion laughs.
        let mut text = String::from("name: &a0 [lol]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = refuse(&text);
        assert!(e.message.contains("expands through its aliases"), "{e:?}");
    }

    #[test]
    fn aliases_within_the_bound_are_read() {
        let text = "name: &n hello\nitems: [*n, *n]\n";
        let doc: Doc = parse(text, &[]).unwrap();
        assert_eq!(doc.items, ["hello", "hello"]);
    }

    #[test]
    fn serde_wording_does_not_leak_and_each_field_is_named_once() {
        let e = refuse("name: a\ncount: many\n");
        assert_eq!((e.line, e.field.as_str()), (2, "count"));
        assert_eq!(
            e.message,
            "expected a whole number, found the text \"many\""
        );
        let e = refuse("- a\n- b\n");
        assert_eq!(e.field, "yaml");
        assert_eq!(
            e.message,
            "expected a map of keys (name, count, items), found a list"
        );
        let e = refuse("name: a\nname: b\n");
        assert_eq!((e.line, e.field.as_str()), (2, "name"), "{e:?}");
        let e = refuse("name: a\ncolour: b\n");
        assert_eq!((e.line, e.field.as_str()), (2, "colour"), "{e:?}");
        assert!(e.message.contains("name, count, items"), "{e:?}");
        let e = refuse("{name: a,\n count: x}\n");
        assert_eq!(e.line, 2, "{e:?}");
    }

    #[test]
    fn bytes_that_are_not_text_are_refused_on_their_line() {
        let e = decode(b"name: a\nitems: [\xff]\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("UTF-8"));
        let e = decode(b"name: a\n\ncount: 1\0\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("NUL"));
        assert_eq!(decode(b"name: a\n").unwrap(), "name: a\n");
    }
}
