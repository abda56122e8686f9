mod asciicast;
fn main() {}
