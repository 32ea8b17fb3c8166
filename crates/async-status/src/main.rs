fn main() {
    async_status::run(std::env::args_os().skip(1).collect()).exit()
}
