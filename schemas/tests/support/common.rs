//! A Kafka record as the tests build it, and how many property-test cases
//! to run: shared by the validator's tests here and the end-to-end tests
//! (tests/support/mod.rs includes this file).

/// Property-test cases: `PROPTEST_CASES` when set (to run more, or fewer), else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One Kafka record to send.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub partition: Option<i32>,
    /// The Kafka timestamp to produce it with (ms since the epoch); `None`:
    /// the producer's clock.
    pub timestamp_ms: Option<i64>,
}

impl Record {
    /// This record as the pipeline's validator sees it.
    pub fn decode(&self, d: &schemas::Decoder) -> Result<schemas::Event, schemas::Rejection> {
        let headers: Vec<schemas::Header<'_>> = self
            .headers
            .iter()
            .map(|(k, v)| schemas::Header {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        d.decode(&schemas::Message {
            headers: &headers,
            value: self.value.as_deref(),
            timestamp_ms: self.timestamp_ms,
        })
    }
}
