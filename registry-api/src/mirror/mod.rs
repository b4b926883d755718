//! The mirror: a pull-through cache of upstream registries and scheduled sync, both
//! written into the index through its owner so static hosts serve what was mirrored.

pub mod settings;
pub mod sync;
