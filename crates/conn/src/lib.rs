//! pgark-conn
