//! Screen capture from a real X server, on the program's shared connection.

use ward_agent::capture::x11::X11Capturer;
use ward_agent::capture::{downscale, encode_png, Capturer};
use ward_agent::source::x11::Display;
use ward_agent::source::WindowInfo;

use crate::desktop::Desktop;

#[test]
fn the_active_windows_monitor_is_captured_and_encodes_as_png() {
    let mut desktop = Desktop::start();
    let window = desktop.open_terminal("capture me");
    let display = Display::connect(Some(&desktop.display)).unwrap();
    let capturer = X11Capturer::new(display.clone());
    let info = WindowInfo {
        id: window,
        ..WindowInfo::default()
    };
    for _ in 0..20 {
        // Repeated captures on one connection: no reconnect races.
        let image = capturer.capture(&info).expect("captures");
        assert_eq!((image.width, image.height), (1920, 1080));
    }
    let image = capturer.capture(&info).unwrap();
    // The white terminal and the dark root differ: the capture is not a blank buffer.
    let distinct: std::collections::HashSet<_> =
        image.rgb.chunks_exact(3).take(1920 * 540).collect();
    assert!(distinct.len() > 1, "capture is uniform");
    let small = downscale(&image, 1280);
    let png = encode_png(&small).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!((frame.width, frame.height), (1280, 720));
}
