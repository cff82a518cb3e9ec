//! outreach
