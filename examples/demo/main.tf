# The `make demo` pipeline: a small AWS root module. The demo applies it to a moto_server on
# loopback (no cloud account, no network), changes things out of band, and lets the dispatcher's
# drift-scan agent find them. With a real account, drop `endpoint` and the endpoints block.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "endpoint" {
  description = "AWS API endpoint (the demo's moto_server, e.g. http://127.0.0.1:5000)"
  type        = string
}

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {
    ec2 = var.endpoint
    s3  = var.endpoint
    sts = var.endpoint
  }
}

resource "aws_s3_bucket" "logs" {
  bucket = "nightshift-demo-logs"
  tags = {
    env   = "prod"
    owner = "platform"
  }
}

resource "aws_vpc" "main" {
  cidr_block = "10.42.0.0/16"
}

resource "aws_security_group" "web" {
  name        = "nightshift-demo-web"
  description = "HTTPS from anywhere"
  vpc_id      = aws_vpc.main.id

  ingress {
    description = "https"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
