from liftgate.cli.app import main

main()
