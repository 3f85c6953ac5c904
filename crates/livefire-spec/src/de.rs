//! A serde `Deserializer` over located YAML nodes: every error it raises carries the
//! position of the node (or key) that caused it.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::yaml::{Kind, Node, Plain, Pos, plain_scalar};

/// A deserialization error with the position it refers to, once known.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub message: String,
    pub pos: Option<Pos>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            pos: None,
        }
    }
}

/// Deserializes `T` from `node`.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node) -> Result<T, DeError> {
    T::deserialize(node).map_err(|e| located(e, node.pos))
}

fn located(mut e: DeError, pos: Pos) -> DeError {
    e.pos.get_or_insert(pos);
    e
}

fn scalar(node: &Node) -> Option<(&str, bool)> {
    match &node.kind {
        Kind::Scalar { text, plain } => Some((text.as_str(), *plain)),
        _ => None,
    }
}

fn unexpected(node: &Node) -> de::Unexpected<'_> {
    match &node.kind {
        Kind::Scalar { .. } if node.is_null() => de::Unexpected::Unit,
        Kind::Scalar { text, .. } => de::Unexpected::Str(text),
        Kind::Seq(_) => de::Unexpected::Seq,
        Kind::Map(_) => de::Unexpected::Map,
    }
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let r = match scalar(self) {
                Some((text, true)) => match text.parse::<$ty>() {
                    Ok(v) => visitor.$visit(v),
                    Err(_) => Err(de::Error::invalid_type(unexpected(self), &visitor)),
                },
                _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
            };
            r.map_err(|e| located(e, self.pos))
        }
    };
}

impl<'de> de::Deserializer<'de> for &'de Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.kind {
            Kind::Scalar { text, plain: false } => visitor.visit_borrowed_str(text),
            Kind::Scalar { text, plain: true } => match plain_scalar(text) {
                Plain::Null => visitor.visit_unit(),
                Plain::Bool(b) => visitor.visit_bool(b),
                Plain::Int(i) => visitor.visit_i64(i),
                Plain::Float(f) => visitor.visit_f64(f),
                Plain::Str => visitor.visit_borrowed_str(text),
            },
            Kind::Seq(items) => visitor.visit_seq(Seq { iter: items.iter() }),
            Kind::Map(entries) => visitor.visit_map(Map::new(entries)),
        };
        r.map_err(|e| located(e, self.pos))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match scalar(self) {
            Some((text, true)) => match plain_scalar(text) {
                Plain::Bool(b) => visitor.visit_bool(b),
                _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
            },
            _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
        };
        r.map_err(|e| located(e, self.pos))
    }

    int_method!(deserialize_i8, visit_i8, i8);
    int_method!(deserialize_i16, visit_i16, i16);
    int_method!(deserialize_i32, visit_i32, i32);
    int_method!(deserialize_i64, visit_i64, i64);
    int_method!(deserialize_u8, visit_u8, u8);
    int_method!(deserialize_u16, visit_u16, u16);
    int_method!(deserialize_u32, visit_u32, u32);
    int_method!(deserialize_u64, visit_u64, u64);
    int_method!(deserialize_f32, visit_f32, f32);
    int_method!(deserialize_f64, visit_f64, f64);

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.kind {
            Kind::Scalar { .. } if self.is_null() => {
                Err(de::Error::invalid_type(unexpected(self), &visitor))
            }
            Kind::Scalar { text, .. } => visitor.visit_borrowed_str(text),
            _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
        };
        r.map_err(|e| located(e, self.pos))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = if self.is_null() {
            visitor.visit_unit()
        } else {
            Err(de::Error::invalid_type(unexpected(self), &visitor))
        };
        r.map_err(|e| located(e, self.pos))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| located(e, self.pos))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.kind {
            Kind::Seq(items) => visitor.visit_seq(Seq { iter: items.iter() }),
            _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
        };
        r.map_err(|e| located(e, self.pos))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.kind {
            Kind::Map(entries) => visitor.visit_map(Map::new(entries)),
            // `key:` with nothing after it reads as an empty mapping (`host: {}`).
            Kind::Scalar { .. } if self.is_null() => visitor.visit_map(Map::new(&[])),
            _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
        };
        r.map_err(|e| located(e, self.pos))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.kind {
            Kind::Scalar { text, .. } if !self.is_null() => {
                visitor.visit_enum(text.as_str().into_deserializer())
            }
            Kind::Map(entries) if entries.len() == 1 => visitor.visit_enum(Enum {
                key: &entries[0].0,
                value: &entries[0].1,
            }),
            Kind::Map(entries) => Err(DeError {
                message: format!(
                    "expected exactly one key naming the kind, found {}{}",
                    entries.len(),
                    if entries.is_empty() {
                        String::new()
                    } else {
                        let keys: Vec<_> = entries
                            .iter()
                            .filter_map(|(k, _)| k.as_str())
                            .map(|k| format!("`{k}`"))
                            .collect();
                        format!(": {}", keys.join(", "))
                    }
                ),
                pos: Some(self.pos),
            }),
            _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
        };
        r.map_err(|e| located(e, self.pos))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct Seq<'de> {
    iter: std::slice::Iter<'de, Node>,
}

impl<'de> de::SeqAccess<'de> for Seq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            Some(node) => seed
                .deserialize(node)
                .map(Some)
                .map_err(|e| located(e, node.pos)),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Map<'de> {
    entries: &'de [(Node, Node)],
    next: usize,
    /// The keys read so far: a set, so that checking for duplicates stays linear in
    /// the size of the mapping.
    seen: HashSet<&'de str>,
}

impl<'de> Map<'de> {
    fn new(entries: &'de [(Node, Node)]) -> Self {
        Map {
            entries,
            next: 0,
            seen: HashSet::new(),
        }
    }
}

impl<'de> de::MapAccess<'de> for Map<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, _)) = self.entries.get(self.next) else {
            return Ok(None);
        };
        // A key written twice is a mistake YAML parsers often let through silently.
        if let Some(text) = key.as_str()
            && !self.seen.insert(text)
        {
            return Err(DeError {
                message: format!("duplicate key `{text}`"),
                pos: Some(key.pos),
            });
        }
        seed.deserialize(key)
            .map(Some)
            .map_err(|e| located(e, key.pos))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (_, value) = &self.entries[self.next];
        self.next += 1;
        seed.deserialize(value).map_err(|e| located(e, value.pos))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.next)
    }
}

struct Enum<'de> {
    key: &'de Node,
    value: &'de Node,
}

impl<'de> de::EnumAccess<'de> for Enum<'de> {
    type Error = DeError;
    type Variant = &'de Node;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, &'de Node), DeError> {
        let v = seed
            .deserialize(self.key)
            .map_err(|e| located(e, self.key.pos))?;
        Ok((v, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for &'de Node {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self).map_err(|e| located(e, self.pos))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::yaml::parse;

    #[test]
    fn many_keys_do_not_make_the_duplicate_check_quadratic() {
        // Caught by probing the parser beside the fuzzer: `vars:` with 50,000 keys took
        // 200 s to validate (each key was compared with every key before it); now well
        // under a second. The bound is generous so only the quadratic check trips it.
        let mut text = String::new();
        for i in 0..50_000 {
            text.push_str(&format!("k{i}: v\n"));
        }
        let tree = parse(&text).unwrap();
        let started = Instant::now();
        let map: BTreeMap<String, String> = from_node(&tree).unwrap();
        assert_eq!(map.len(), 50_000);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );

        // Duplicates are still found, at the second occurrence.
        text.push_str("k123: again\n");
        let tree = parse(&text).unwrap();
        let err = from_node::<BTreeMap<String, String>>(&tree).unwrap_err();
        assert_eq!(err.message, "duplicate key `k123`");
        assert_eq!(
            err.pos,
            Some(Pos {
                line: 50_001,
                col: 1
            })
        );
    }
}
