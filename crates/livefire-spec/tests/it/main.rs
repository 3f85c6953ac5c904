//! Integration tests of the experiment file: located errors, the whole format, schema.

mod corpus;
mod errors;
mod format;
