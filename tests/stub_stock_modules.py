"""Replace ansible-core's own async_wrapper and async_status modules with stubs that fail loudly
(harness/stubs.py says how and why). Run with the python of a controller venv (tests/setup-venvs.sh
does):

    .venv/core-2.19/bin/python tests/stub_stock_modules.py [--restore]
"""

from harness.stubs import main

if __name__ == "__main__":
    main()
