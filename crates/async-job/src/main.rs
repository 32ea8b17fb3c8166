fn main() {
    async_job::run(std::env::args_os().skip(1).collect()).exit()
}
