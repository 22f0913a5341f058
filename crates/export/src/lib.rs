//! pgark-export
