//! Serial ports (keypads, USB relay boards): the only file that names tokio-serial.

use std::path::Path;

pub type Port = tokio_serial::SerialStream;

/// Opens `path` raw, 8N1, at `baud`. Prefer `/dev/serial/by-id/...` paths: `ttyUSBn`
/// numbers move when devices are replugged.
pub fn open(path: &Path, baud: u32) -> std::io::Result<Port> {
    let builder = tokio_serial::new(path.to_string_lossy(), baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(tokio_serial::FlowControl::None);
    tokio_serial::SerialStream::open(&builder).map_err(std::io::Error::from)
}
