from audio.cli import main

main()
