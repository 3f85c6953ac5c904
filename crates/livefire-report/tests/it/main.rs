//! Tests of livefire-report on the journals of real runs (tests/fixtures): summary and
//! its schema, JUnit, the HTML page (and in headless Chromium), damaged journals.

mod chromium;
mod html;
mod junit;
mod schema;
mod support;
