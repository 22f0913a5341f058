//! pgark-catalog
