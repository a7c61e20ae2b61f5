fn main() {
    eprintln!("tessera-nodetool: not yet");
    std::process::exit(1);
}
