//! The alert dispatcher: turns the detector's anomaly events into alerts that never storm
//! and never double. Every detection of an episode carries the window the episode began
//! in; (device, rule, window) is claimed with a conditional write, and only the claimant
//! notifies. Later detections increment the alert's counter; the episode's clear resolves
//! it.

pub mod aws;
pub mod handler;
pub mod memory;
pub mod ports;
pub mod process;
