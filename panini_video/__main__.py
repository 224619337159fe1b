import sys

from panini_video.cli import main

sys.exit(main())
