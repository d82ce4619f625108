from lit_gan.cli import main

main()
