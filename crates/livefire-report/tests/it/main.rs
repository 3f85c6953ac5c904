//! Tests of livefire-report on the journals of real runs (tests/fixtures): summary and
//! its schema, JUnit, the HTML page (and in headless Chromium), damaged journals; game
//! days' measures and after-action review.

mod chromium;
mod compare;
mod gameday;
mod html;
mod junit;
mod long_run;
mod runs;
mod schema;
mod support;
// Metric windows merged while reading, whatever their order.
mod windows;
