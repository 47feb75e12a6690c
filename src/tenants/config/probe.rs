//! Finding where an entry of the tenants file is: the file is read a second time, up to
//! the entry (and key) at fault, and the read fails there on purpose, so that the YAML
//! crate's error carries that node's line.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

/// Reads the file again up to entry `index` (and its `key`), and fails there, so that the
/// YAML crate's error carries that node's position.
pub(super) struct FileProbe {
    pub(super) index: usize,
    pub(super) key: Option<&'static str>,
}

impl<'de> DeserializeSeed<'de> for FileProbe {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FileProbe {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tenants file")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "tenants" {
                return map.next_value_seed(ListProbe {
                    index: self.index,
                    key: self.key,
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

struct ListProbe {
    index: usize,
    key: Option<&'static str>,
}

impl<'de> DeserializeSeed<'de> for ListProbe {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListProbe {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of tenants")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        for _ in 0..self.index {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        match self.key {
            None => seq.next_element_seed(Stop)?,
            Some(key) => seq.next_element_seed(EntryProbe { key })?,
        };
        Ok(())
    }
}

struct EntryProbe {
    key: &'static str,
}

impl<'de> DeserializeSeed<'de> for EntryProbe {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntryProbe {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tenant")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == self.key {
                return map.next_value_seed(Stop);
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// Refuses whatever node comes: the refusal is where the YAML crate records its position.
struct Stop;

impl<'de> DeserializeSeed<'de> for Stop {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Stop {
    type Value = ();

    // Every visit_* method is left at serde's default, which refuses the node.
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nothing (a probe for a position)")
    }
}
