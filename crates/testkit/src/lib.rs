//! pgark-testkit
