//! pgark facade
