fn main() {
    std::process::exit(weft::run_multicall(std::env::args().collect()));
}
