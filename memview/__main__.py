from memview.cli import main

main()
