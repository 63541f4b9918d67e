from sedscale.cli import main

main()
