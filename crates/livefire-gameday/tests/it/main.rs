//! Integration tests of livefire-gameday.

/// What the responders may see, and who may mark, as a journal unfolds.
mod live;
