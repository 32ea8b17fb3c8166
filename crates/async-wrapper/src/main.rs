fn main() {
    async_wrapper::run(std::env::args_os().skip(1).collect()).exit()
}
