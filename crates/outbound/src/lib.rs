//! Outbound HTTP made on a client's behalf: webhook deliveries and fetches of client-supplied
//! media. Every such request passes the SSRF guard.
