from panini_video.cli import console_main

console_main()
