import sys

from studio.cli import main
from studio.quiet import quiet_libraries

quiet_libraries()
sys.exit(main())
