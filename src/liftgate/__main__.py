from liftgate.cli.entry import main

main()
