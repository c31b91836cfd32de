//! A small blocking client for a node's REST API (ureq, plain HTTP): what `dispersy post`,
//! `messages`, `peers` and `status` use, and what tests drive the daemon with.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::daemon::views::ErrorBody;

/// The API address `dispersy node` serves by default.
pub const DEFAULT_API: &str = "http://127.0.0.1:7760";

/// Longest line of an event stream the client accepts.
const MAX_EVENT_LINE: u64 = 1 << 20;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached.
    #[error(
        "cannot reach the node's API at {url}: {detail} (is `dispersy node` running? see --api)"
    )]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        detail: String,
    },
    /// The node answered with an error.
    #[error("{detail} ({status} {error})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code.
        error: String,
        /// What was wrong.
        detail: String,
    },
    /// The answer could not be read.
    #[error("unexpected answer from {url}: {detail}")]
    Decode {
        /// The URL.
        url: String,
        /// Why.
        detail: String,
    },
}

/// A client of one node's API.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    stream_agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event name (`message`, `peer`, ...).
    pub event: String,
    /// Its data (JSON).
    pub data: String,
}

impl Client {
    /// A client of the API at `base` (`http://127.0.0.1:7760`), sending `token` if given.
    pub fn new(base: &str, token: Option<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let stream_agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        Client {
            agent,
            stream_agent,
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth<B>(&self, r: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => r.header("Authorization", format!("Bearer {t}")),
            None => r,
        }
    }

    fn finish<T: DeserializeOwned>(
        url: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Option<T>, ClientError> {
        let mut response = result.map_err(|e| ClientError::Connect {
            url: url.to_owned(),
            detail: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| ClientError::Decode {
                url: url.to_owned(),
                detail: e.to_string(),
            })?;
        if status >= 400 {
            let body: ErrorBody = serde_json::from_str(&text).unwrap_or(ErrorBody {
                error: "http".into(),
                detail: text,
            });
            return Err(ClientError::Api {
                status,
                error: body.error,
                detail: body.detail,
            });
        }
        if status == 204 || text.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ClientError::Decode {
                url: url.to_owned(),
                detail: e.to_string(),
            })
    }

    fn required<T>(url: &str, v: Option<T>) -> Result<T, ClientError> {
        v.ok_or_else(|| ClientError::Decode {
            url: url.to_owned(),
            detail: "empty answer".into(),
        })
    }

    /// `GET path` with query parameters.
    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let mut r = self.auth(self.agent.get(&url));
        for (k, v) in query {
            r = r.query(*k, v);
        }
        let v = Self::finish(&url, r.call())?;
        Self::required(&url, v)
    }

    /// `POST path` with a JSON body; `None` for an empty (204) answer.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Option<T>, ClientError> {
        let url = self.url(path);
        Self::finish(&url, self.auth(self.agent.post(&url)).send_json(body))
    }

    /// `DELETE path` with query parameters.
    pub fn delete(&self, path: &str, query: &[(&str, String)]) -> Result<(), ClientError> {
        let url = self.url(path);
        let mut r = self.auth(self.agent.delete(&url));
        for (k, v) in query {
            r = r.query(*k, v);
        }
        Self::finish::<serde_json::Value>(&url, r.call()).map(|_| ())
    }

    /// Opens the event stream (`GET /api/v1/events`) and yields its events as they come.
    pub fn events(
        &self,
        query: &[(&str, String)],
    ) -> Result<impl Iterator<Item = Result<SseEvent, ClientError>> + use<>, ClientError> {
        let url = self.url("/api/v1/events");
        let mut r = self.auth(self.stream_agent.get(&url));
        for (k, v) in query {
            r = r.query(*k, v);
        }
        let response = r.call().map_err(|e| ClientError::Connect {
            url: url.clone(),
            detail: e.to_string(),
        })?;
        if response.status().as_u16() >= 400 {
            Self::finish::<serde_json::Value>(&url, Ok(response))?;
            return Err(ClientError::Decode {
                url,
                detail: "error without a body".into(),
            });
        }
        let reader = BufReader::new(response.into_body().into_reader());
        Ok(SseReader { reader, url })
    }
}

/// Parses `text/event-stream`: `event:` and `data:` lines, an empty line ends an event.
struct SseReader<R> {
    reader: BufReader<R>,
    url: String,
}

impl<R: Read> Iterator for SseReader<R> {
    type Item = Result<SseEvent, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut event = String::new();
        let mut data = String::new();
        loop {
            let mut line = String::new();
            let n = match (&mut self.reader).take(MAX_EVENT_LINE).read_line(&mut line) {
                Ok(n) => n,
                Err(e) => {
                    return Some(Err(ClientError::Decode {
                        url: self.url.clone(),
                        detail: e.to_string(),
                    }));
                }
            };
            if n == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if data.is_empty() && event.is_empty() {
                    continue;
                }
                return Some(Ok(SseEvent {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    },
                    data,
                }));
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = value.to_owned(),
                "data" => {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_event_streams() {
        let text = ": keep-alive\n\nevent: ready\ndata: {}\n\nevent: message\ndata: {\"a\":\ndata: 1}\n\ndata: x\n\n";
        let events: Vec<SseEvent> = SseReader {
            reader: BufReader::new(text.as_bytes()),
            url: String::new(),
        }
        .map(Result::unwrap)
        .collect();
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "ready".into(),
                    data: "{}".into()
                },
                SseEvent {
                    event: "message".into(),
                    data: "{\"a\":\n1}".into()
                },
                SseEvent {
                    event: "message".into(),
                    data: "x".into()
                },
            ]
        );
    }
}
