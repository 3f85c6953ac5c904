//! livefire-fuzz: the OpenAPI-driven API fuzzer and security checks.
