fn main() {
    eprintln!("tessera: not yet");
    std::process::exit(1);
}
