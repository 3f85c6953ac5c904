//! Tests of livefire-report on the journals of real runs (tests/fixtures): summary and
//! its schema, JUnit, the HTML page (and in headless Chromium), damaged journals.

mod chromium;
mod compare;
mod html;
mod junit;
mod long_run;
mod runs;
mod schema;
mod support;
